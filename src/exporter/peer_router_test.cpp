// Ownership by rendezvous hashing, and fragments forwarded to their owning peer over real
// OTLP/gRPC servers on 127.0.0.1.
#include "exporter/peer_router.h"

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <random>
#include <set>

#include "exporter/otlp_servers_for_tests.h"

namespace tracery::exporter {
namespace {

using namespace std::chrono_literals;
using tracery::testing::Pipeline;
using tracery::testing::ScriptedGrpcServer;

std::unique_ptr<PeerRouter> MakeRouter(std::vector<std::string> peers, std::string self, MetricsRegistry& metrics) {
  PeerRouterOptions options;
  options.peers = std::move(peers);
  options.self = std::move(self);
  options.exporter.retry.initial_interval = 20ms;
  options.exporter.retry.max_elapsed_time = 300ms;
  auto router = PeerRouter::Create(std::move(options), metrics);
  if (!router.ok()) throw std::runtime_error(router.status().ToString());
  return std::move(router).value();
}

std::vector<TraceId> RandomIds(size_t count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<TraceId> ids(count);
  for (auto& id : ids)
    for (auto& byte : id.bytes) byte = uint8_t(random());
  return ids;
}

TEST(PeerRouterTest, OwnershipIsBalancedAndIndependentOfListOrder) {
  MetricsRegistry metrics;
  auto router = MakeRouter({"gw-a:4317", "gw-b:4317", "gw-c:4317"}, "gw-a:4317", metrics);
  auto reordered = MakeRouter({"gw-c:4317", "gw-a:4317", "gw-b:4317"}, "gw-b:4317", metrics);
  std::map<std::string, size_t> owned;
  for (const TraceId& id : RandomIds(30000, 7)) {
    const std::string& owner = router->peers()[router->Owner(id)];
    EXPECT_EQ(owner, reordered->peers()[reordered->Owner(id)]);
    ++owned[owner];
  }
  ASSERT_EQ(owned.size(), 3u);
  for (const auto& [peer, count] : owned) {
    EXPECT_GE(count, 9500u) << peer;
    EXPECT_LE(count, 10500u) << peer;
  }
}

TEST(PeerRouterTest, OwnershipIsStableAcrossProcessesAndMovesOnlyARemovedPeersTraces) {
  MetricsRegistry metrics;
  auto three = MakeRouter({"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"}, "10.0.0.1:4317", metrics);
  auto two = MakeRouter({"10.0.0.1:4317", "10.0.0.2:4317"}, "10.0.0.1:4317", metrics);
  // Pinned values: a change of the hash would split traces between gateways of two versions.
  EXPECT_EQ(three->peers()[three->Owner(TraceId::FromBytes(std::string(16, 'a')))], "10.0.0.1:4317");
  EXPECT_EQ(three->peers()[three->Owner(TraceId::FromBytes(std::string(16, 'd')))], "10.0.0.2:4317");
  size_t third = 0;
  for (const TraceId& id : RandomIds(300, 5)) third += three->peers()[three->Owner(id)] == "10.0.0.3:4317";
  EXPECT_GT(third, 0u);
  for (const TraceId& id : RandomIds(3000, 11)) {
    const std::string& before = three->peers()[three->Owner(id)];
    if (before != "10.0.0.3:4317") {
      EXPECT_EQ(two->peers()[two->Owner(id)], before);
    }
  }
}

TEST(PeerRouterTest, RefusesBadPeerLists) {
  MetricsRegistry metrics;
  PeerRouterOptions options;
  EXPECT_FALSE(PeerRouter::Create(options, metrics).ok());
  options.peers = {"a:1", "b:1"};
  options.self = "c:1";
  EXPECT_FALSE(PeerRouter::Create(options, metrics).ok());
  options.peers = {"a:1", "a:1"};
  options.self = "a:1";
  EXPECT_FALSE(PeerRouter::Create(options, metrics).ok());
}

// A request holding one span in each of `count` traces, trace i's ID bytes all `first + i`.
std::string ManyTraces(int count) {
  std::string request;
  for (int i = 0; i < count; ++i) request += Pipeline::Request(char(1 + i), {1});
  return request;
}

TEST(PeerRouterTest, ForwardsEachFragmentToItsOwnerMarkedForwarded) {
  ScriptedGrpcServer peer_b([](const GrpcRequest&, int) { return GrpcResponse::Ok({}); });
  ScriptedGrpcServer peer_c([](const GrpcRequest&, int) { return GrpcResponse::Ok({}); });
  const std::string self = "127.0.0.1:1";  // never dialled: it is this gateway
  MetricsRegistry metrics;
  auto router = MakeRouter({self, peer_b.endpoint(), peer_c.endpoint()}, self, metrics);

  otlp::SplitRequest split;
  ASSERT_TRUE(otlp::SplitByTrace(ManyTraces(60), split).ok());
  std::vector<bool> local;
  std::promise<Status> done;
  router->Route("acme", split, local, [&](Status status) { done.set_value(std::move(status)); });
  auto answer = done.get_future();
  ASSERT_EQ(answer.wait_for(10s), std::future_status::ready);
  Status status = answer.get();
  ASSERT_TRUE(status.ok()) << status.ToString();

  ASSERT_EQ(local.size(), split.fragments.size());
  std::map<std::string, std::set<TraceId>> expected;
  for (size_t i = 0; i < split.fragments.size(); ++i) {
    const TraceId& id = split.fragments[i].trace_id;
    EXPECT_EQ(local[i], router->IsLocal(id));
    expected[router->peers()[router->Owner(id)]].insert(id);
  }
  EXPECT_FALSE(expected[self].empty());
  for (ScriptedGrpcServer* peer : {&peer_b, &peer_c}) {
    auto requests = peer->requests();
    ASSERT_EQ(requests.size(), 1u) << "one request per peer";
    ASSERT_NE(requests[0].FindMetadata(kForwardedHeader), nullptr);
    EXPECT_EQ(*requests[0].FindMetadata(kForwardedHeader), "1");
    ASSERT_NE(requests[0].FindMetadata("x-scope-orgid"), nullptr);
    EXPECT_EQ(*requests[0].FindMetadata("x-scope-orgid"), "acme");
    otlp::SplitRequest received;
    ASSERT_TRUE(otlp::SplitByTrace(requests[0].message, received).ok());
    std::set<TraceId> got;
    for (const auto& fragment : received.fragments) got.insert(fragment.trace_id);
    EXPECT_EQ(got, expected[peer->endpoint()]);
  }
}

TEST(PeerRouterTest, NothingToForwardAnswersAtOnce) {
  MetricsRegistry metrics;
  auto router = MakeRouter({"127.0.0.1:1"}, "127.0.0.1:1", metrics);
  otlp::SplitRequest split;
  ASSERT_TRUE(otlp::SplitByTrace(ManyTraces(5), split).ok());
  std::vector<bool> local;
  bool called = false;
  router->Route(kSingleTenant, split, local, [&](Status status) {
    EXPECT_TRUE(status.ok());
    called = true;
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(local, std::vector<bool>(split.fragments.size(), true));
}

TEST(PeerRouterTest, APeerThatIsDownFailsTheRequestRetryably) {
  ScriptedGrpcServer peer_b([](const GrpcRequest&, int) { return GrpcResponse::Ok({}); });
  const std::string self = "127.0.0.1:1", down = "127.0.0.1:2";
  MetricsRegistry metrics;
  auto router = MakeRouter({self, peer_b.endpoint(), down}, self, metrics);
  otlp::SplitRequest split;
  ASSERT_TRUE(otlp::SplitByTrace(ManyTraces(60), split).ok());
  std::vector<bool> local;
  std::promise<Status> done;
  router->Route(kSingleTenant, split, local, [&](Status status) { done.set_value(std::move(status)); });
  auto answer = done.get_future();
  ASSERT_EQ(answer.wait_for(10s), std::future_status::ready);
  Status status = answer.get();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
}

}  // namespace
}  // namespace tracery::exporter
