// A bounded fuzz run of the OTLP/HTTP receiver and everything behind it (gzip, JSON and
// protobuf decoding, validation, the distributor, the WAL): valid requests are mutated (bits
// flipped, bytes inserted, removed and overwritten, cut short, spliced with each other) and
// sent with every content type and encoding. Every request must get an answer, never a 5xx,
// and a valid request must still be stored afterwards. Seeded, so a failure repeats.
#include <gtest/gtest.h>


#include <chrono>
#include <future>
#include <map>
#include <random>

#include "common/compress_for_tests.h"
#include "otlp/json.h"
#include "otlp/model.h"
#include "receiver/receivers.h"
#include "server/pipeline_for_tests.h"

namespace tracery::receiver {
namespace {

using tracery::testing::Pipeline;
namespace http = boost::beast::http;

std::string Mutate(std::string data, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  int edits = 1 + int(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t at = data.empty() ? 0 : size_t(rng() % data.size());
    switch (rng() % 6) {
      case 0:
        if (!data.empty()) data[at] = char(data[at] ^ char(1 << (rng() % 8)));
        break;
      case 1: data.insert(at, 1, char(rng())); break;
      case 2:
        if (!data.empty()) data.erase(at, 1 + rng() % 8);
        break;
      case 3: data.resize(at); break;
      case 4: {
        const std::string& other = corpus[rng() % corpus.size()];
        size_t from = other.empty() ? 0 : size_t(rng() % other.size());
        data = data.substr(0, at) + other.substr(from);
        break;
      }
      default:
        // Interesting values at a random place: varint continuation bytes, huge lengths.
        data.insert(at, std::string(1 + rng() % 10, char(0xff)));
        break;
    }
  }
  return data;
}

TEST(ReceiverFuzzTest, MutatedRequestsGetAnAnswerAndNeverA5xx) {
  Pipeline pipeline;
  HttpHandler handler = MakeOtlpHttpHandler(pipeline.distributor(), 1 << 20);
  std::vector<std::string> corpus;
  for (char trace = 'a'; trace <= 'e'; ++trace) corpus.push_back(Pipeline::Request(trace, {1, 2, 3}, "svc-" + std::string(1, trace)));
  for (const auto& request : std::vector<std::string>(corpus)) {
    otlp::TracesData data;
    ASSERT_TRUE(otlp::DecodeTracesData(request, data).ok());
    std::string json = "{\"resourceSpans\":";
    otlp::WriteJsonResourceSpans(data, json);
    json += "}";
    corpus.push_back(json);
  }
  std::mt19937_64 rng(20261129);
  const char* types[] = {"application/x-protobuf", "application/json", "application/protobuf", "text/plain"};
  const char* encodings[] = {"", "gzip", "deflate", "identity", "br"};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  int sent = 0, refused = 0;
  std::map<unsigned, int> statuses;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string& seed = corpus[rng() % corpus.size()];
    std::string body = Mutate(seed, corpus, rng);
    const char* encoding = encodings[rng() % 5];
    if (std::string(encoding) == "gzip") body = rng() % 2 ? CompressForTests(body, CompressedFormat::kGzip) : Mutate(CompressForTests(body, CompressedFormat::kGzip), corpus, rng);
    if (std::string(encoding) == "deflate") body = rng() % 2 ? CompressForTests(body, CompressedFormat::kZlib) : Mutate(CompressForTests(body, CompressedFormat::kZlib), corpus, rng);
    HttpRequest request(http::verb::post, "/v1/traces", 11);
    request.set(http::field::content_type, types[rng() % 4]);
    if (*encoding) request.set(http::field::content_encoding, encoding);
    request.body() = body;
    std::promise<HttpResponse> answer;
    auto future = answer.get_future();
    handler(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
    ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "request " << sent << " got no answer";
    HttpResponse response = future.get();
    statuses[response.status]++;
    ASSERT_LT(response.status, 500u) << "request " << sent << ": " << response.body;
    refused += response.status != 200;
    sent++;
  }
  EXPECT_GT(sent, 1000);
  EXPECT_GT(refused, 0);
  for (const auto& [status, count] : statuses) std::printf("status %u: %d requests\n", status, count);
  // Still healthy: a valid request is stored and read back.
  HttpRequest valid(http::verb::post, "/v1/traces", 11);
  valid.set(http::field::content_type, "application/x-protobuf");
  valid.body() = Pipeline::Request('z', {7});
  std::promise<HttpResponse> answer;
  handler(std::move(valid), [&](HttpResponse r) { answer.set_value(std::move(r)); });
  EXPECT_EQ(answer.get_future().get().status, 200u);
  auto trace = pipeline.reader().FindTrace(kSingleTenant, TraceId::FromBytes(std::string(16, 'z')));
  ASSERT_TRUE(trace.ok() && trace->has_value());
}

}  // namespace
}  // namespace tracery::receiver
