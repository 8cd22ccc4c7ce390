// GrpcH2Server against two clients: gRPC C++ (what well-behaved callers do: calls, metadata,
// compression, status details) and a raw nghttp2 client session over a socket (what no gRPC
// library sends: broken framing, flags, two messages, stalled streams, budgets, keepalive).
// The framing helpers (grpc_framing.h) are checked on their own at the end.
#include "common/grpc_h2_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <snappy.h>
#include <zstd.h>

#include <array>
#include <future>
#include <list>
#include <random>
#include <thread>

#include "common/compress_for_tests.h"
#include "common/crc32c.h"

namespace tracery {
namespace {

using namespace std::chrono_literals;

// A gRPC message with its 5-byte prefix; `length` overrides the announced length.
std::string Frame(std::string_view message, uint8_t flag = 0, std::optional<uint32_t> length = {}) {
  uint32_t n = length.value_or(uint32_t(message.size()));
  std::string out{char(flag), char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
  return out + std::string(message);
}

// An HTTP/2 client session (nghttp2) on a blocking socket, pumped by RunUntil.
class RawH2Client {
 public:
  struct StreamResult {
    std::map<std::string, std::string> headers;  // response headers and trailers together
    std::string data;
    bool closed = false;
    uint32_t close_code = 0;
    bool reset = false;  // RST_STREAM received
  };

  explicit RawH2Client(uint16_t port, bool auto_ping_ack = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    int one = 1;  // frames are sent as they are made: Nagle would hold each small one for an ACK
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    nghttp2_session_callbacks* callbacks;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(
        callbacks, [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t name_length, const uint8_t* value,
                      size_t value_length, uint8_t, void* user) {
          Of(user).streams_[frame->hd.stream_id].headers[std::string(reinterpret_cast<const char*>(name), name_length)] =
              std::string(reinterpret_cast<const char*>(value), value_length);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        callbacks, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t length, void* user) {
          Of(user).streams_[id].data.append(reinterpret_cast<const char*>(data), length);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, [](nghttp2_session*, int32_t id, uint32_t code, void* user) {
      Of(user).streams_[id].closed = true;
      Of(user).streams_[id].close_code = code;
      return 0;
    });
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
      if (frame->hd.type == NGHTTP2_GOAWAY) {
        Of(user).goaway_ = true;
        Of(user).goaway_code_ = frame->goaway.error_code;
      }
      if (frame->hd.type == NGHTTP2_RST_STREAM) Of(user).streams_[frame->hd.stream_id].reset = true;
      if (frame->hd.type == NGHTTP2_PING && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) Of(user).pings_ += 1;
      return 0;
    });
    nghttp2_option* option;
    nghttp2_option_new(&option);
    if (!auto_ping_ack) nghttp2_option_set_no_auto_ping_ack(option, 1);
    nghttp2_session_client_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~RawH2Client() {
    nghttp2_session_del(session_);
    ::close(fd_);
  }

  // Opens a stream with a gRPC call's headers (`extra` added or replacing by name); with
  // `end`, the HEADERS frame ends the stream.
  int32_t Open(std::vector<std::pair<std::string, std::string>> extra = {}, bool end = false,
               std::string path = "/test.Service/Echo") {
    std::vector<std::pair<std::string, std::string>> headers{{":method", "POST"}, {":scheme", "http"}, {":path", path},
                                                             {":authority", "localhost"}, {"content-type", "application/grpc"},
                                                             {"te", "trailers"}};
    for (auto& [name, value] : extra) {
      auto it = std::find_if(headers.begin(), headers.end(), [&](auto& h) { return h.first == name; });
      if (it != headers.end()) it->second = value;
      else headers.emplace_back(name, value);
    }
    std::vector<nghttp2_nv> nv;
    for (auto& [name, value] : headers)
      nv.push_back({reinterpret_cast<uint8_t*>(name.data()), reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE});
    int32_t id = nghttp2_submit_headers(session_, end ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, -1, nullptr, nv.data(),
                                        nv.size(), nullptr);
    SendQueued();  // the stream exists once its HEADERS are sent; DATA can be submitted then
    return id;
  }

  void Send(int32_t id, std::string bytes, bool end) {
    pending_.push_back({std::move(bytes), 0});
    nghttp2_data_provider provider;
    provider.source.ptr = &pending_.back();
    provider.read_callback = [](nghttp2_session*, int32_t, uint8_t* buffer, size_t length, uint32_t* flags, nghttp2_data_source* source,
                                void*) -> ssize_t {
      auto* data = static_cast<std::pair<std::string, size_t>*>(source->ptr);
      size_t n = std::min(length, data->first.size() - data->second);
      std::memcpy(buffer, data->first.data() + data->second, n);
      data->second += n;
      if (data->second == data->first.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return ssize_t(n);
    };
    nghttp2_submit_data(session_, end ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, id, &provider);
  }

  // A whole unary call: headers, `body` as one DATA frame, END_STREAM.
  int32_t Call(std::string body, std::vector<std::pair<std::string, std::string>> extra = {}) {
    int32_t id = Open(std::move(extra));
    Send(id, std::move(body), true);
    return id;
  }

  void Ping() { nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr); }
  void Reset(int32_t id) { nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL); }

  // Sends and receives until `done` holds (true) or the timeout passes (false).
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      SendQueued();
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= until || disconnected_) return done();
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) > 0) {
        uint8_t buffer[16384];
        ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n <= 0) {
          disconnected_ = true;
          continue;
        }
        nghttp2_session_mem_recv(session_, buffer, size_t(n));
      }
    }
  }
  bool RunUntilClosed(int32_t id, std::chrono::milliseconds timeout = 5s) {
    return RunUntil([&] { return streams_[id].closed; }, timeout);
  }

  void SendQueued() {
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      if (!disconnected_ && ::send(fd_, data, size_t(n), MSG_NOSIGNAL) != n) disconnected_ = true;
    }
  }

  StreamResult& stream(int32_t id) { return streams_[id]; }
  bool connected() const { return connected_; }
  bool goaway() const { return goaway_; }
  uint32_t goaway_code() const { return goaway_code_; }
  bool disconnected() const { return disconnected_; }
  int pings() const { return pings_; }
  void AckPings() {  // answers the PINGs received so far (with automatic acks off)
    for (; acked_ < pings_; ++acked_) nghttp2_submit_ping(session_, NGHTTP2_FLAG_ACK, nullptr);
  }

 private:
  static RawH2Client& Of(void* user) { return *static_cast<RawH2Client*>(user); }
  int fd_ = -1;
  bool connected_ = false, goaway_ = false, disconnected_ = false;
  int pings_ = 0, acked_ = 0;
  uint32_t goaway_code_ = 0;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, StreamResult> streams_;
  std::list<std::pair<std::string, size_t>> pending_;
};

class GrpcH2ServerTest : public ::testing::Test {
 protected:
  void StartServer(GrpcServerOptions options = {}) {
    std::map<std::string, GrpcUnaryHandler, std::less<>> methods;
    methods["/test.Service/Echo"] = [this](GrpcRequest&& request, GrpcRespond respond) {
      {
        std::lock_guard lock(mutex_);
        last_metadata_ = request.metadata;
        calls_ += 1;
      }
      // Answered from another thread, as the WAL writer answers the receiver.
      std::thread([respond = std::move(respond), message = std::move(request.message)] { respond(GrpcResponse::Ok("echo:" + message)); })
          .detach();
    };
    methods["/test.Service/Fail"] = [](GrpcRequest&& request, GrpcRespond respond) {
      respond(GrpcResponse::Error(GrpcCode::kResourceExhausted, "slow down: 100% full, ünïcode\n", std::string("\x08\x08\x12\x01x", 5)));
    };
    methods["/test.Service/Hold"] = [this](GrpcRequest&&, GrpcRespond respond) {
      std::lock_guard lock(mutex_);
      held_.push_back(std::move(respond));
    };
    auto server = GrpcH2Server::Bind(io_, "127.0.0.1", 0, std::move(options), std::move(methods));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    server_->Start();
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  size_t HeldCalls() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
    for (auto until = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < until;
         std::this_thread::sleep_for(2ms))
      if (condition()) return true;
    return condition();
  }

  // A call through gRPC C++; `prepare` sets up the context (metadata, compression, deadline).
  grpc::Status Call(const std::string& method, const std::string& request, std::string* response,
                    const std::function<void(grpc::ClientContext&)>& prepare = {}) {
    if (!channel_) channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials());
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    if (prepare) prepare(context);
    grpc::Slice slice(request);
    grpc::ByteBuffer request_buffer(&slice, 1), response_buffer;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                   [&](grpc::Status status) { done.set_value(status); });
    grpc::Status status = done.get_future().get();
    if (response) {
      grpc::Slice out;
      response->clear();
      if (status.ok() && response_buffer.DumpToSingleSlice(&out).ok()) response->assign(reinterpret_cast<const char*>(out.begin()), out.size());
    }
    return status;
  }

  boost::asio::io_context io_;
  std::unique_ptr<GrpcH2Server> server_;
  std::thread thread_;
  std::shared_ptr<grpc::Channel> channel_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> last_metadata_;
  int calls_ = 0;
  std::vector<GrpcRespond> held_;
};

// --- with gRPC C++ -----------------------------------------------------------------------

TEST_F(GrpcH2ServerTest, AnswersCallsWithMetadataFromAnotherThread) {
  StartServer();
  std::string response;
  grpc::Status status = Call("/test.Service/Echo", "hello", &response, [](grpc::ClientContext& c) { c.AddMetadata("x-scope-orgid", "team-a"); });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response, "echo:hello");
  std::lock_guard lock(mutex_);
  auto org = std::find_if(last_metadata_.begin(), last_metadata_.end(), [](auto& m) { return m.first == "x-scope-orgid"; });
  ASSERT_NE(org, last_metadata_.end());
  EXPECT_EQ(org->second, "team-a");
}

TEST_F(GrpcH2ServerTest, ManyConcurrentCallsOnOneChannel) {
  StartServer();
  std::vector<std::future<bool>> calls;
  for (int i = 0; i < 300; ++i)
    calls.push_back(std::async(std::launch::async, [this, i] {
      std::string response;
      return Call("/test.Service/Echo", std::to_string(i), &response).ok() && response == "echo:" + std::to_string(i);
    }));
  int ok = 0;
  for (auto& call : calls) ok += call.get();
  EXPECT_EQ(ok, 300);
  EXPECT_EQ(server_->receiving_bytes(), 0u);
}

TEST_F(GrpcH2ServerTest, ReadsCompressedMessages) {
  StartServer();
  std::string big(200'000, 'x');
  for (auto algorithm : {GRPC_COMPRESS_GZIP, GRPC_COMPRESS_DEFLATE}) {
    std::string response;
    grpc::Status status = Call("/test.Service/Echo", big, &response, [&](grpc::ClientContext& c) { c.set_compression_algorithm(algorithm); });
    ASSERT_TRUE(status.ok()) << algorithm << ": " << status.error_message();
    EXPECT_EQ(response, "echo:" + big) << algorithm;
  }
}

TEST_F(GrpcH2ServerTest, ErrorsCarryMessageAndDetails) {
  StartServer();
  grpc::Status status = Call("/test.Service/Fail", "x", nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "slow down: 100% full, ünïcode\n");  // percent-encoded on the wire
  EXPECT_EQ(status.error_details(), std::string("\x08\x08\x12\x01x", 5));
  EXPECT_EQ(Call("/test.Service/Nope", "x", nullptr).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(GrpcH2ServerTest, MessageLimitBeforeAndAfterDecompression) {
  GrpcServerOptions options;
  options.max_message_bytes = 100'000;
  StartServer(options);
  std::string response;
  EXPECT_EQ(Call("/test.Service/Echo", std::string(100'001, 'a'), &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::Status bomb = Call("/test.Service/Echo", std::string(1'000'000, 'a'), &response,
                           [](grpc::ClientContext& c) { c.set_compression_algorithm(GRPC_COMPRESS_GZIP); });
  EXPECT_EQ(bomb.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << bomb.error_message();
  EXPECT_TRUE(Call("/test.Service/Echo", std::string(100'000, 'a'), &response).ok());
}

TEST_F(GrpcH2ServerTest, ShutdownLetsCallsInFlightFinish) {
  StartServer();
  auto call = std::async(std::launch::async, [this] { return Call("/test.Service/Hold", "x", nullptr); });
  ASSERT_TRUE(WaitFor([&] { return HeldCalls() == 1; }));
  auto shutdown = std::async(std::launch::async, [this] { server_->Shutdown(); });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(shutdown.wait_for(0ms), std::future_status::timeout) << "Shutdown waits for the call in flight";
  {
    std::lock_guard lock(mutex_);
    held_[0](GrpcResponse::Ok("late"));
  }
  EXPECT_TRUE(call.get().ok());
  ASSERT_EQ(shutdown.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(GrpcH2ServerTest, ConnectionsSpreadOverSingleThreadedContexts) {
  std::array<boost::asio::io_context, 2> contexts{boost::asio::io_context(1), boost::asio::io_context(1)};
  std::vector<std::thread> threads;
  GrpcServerOptions options;
  for (auto& context : contexts) options.connection_contexts.push_back(&context);
  StartServer(options);
  for (auto& context : contexts)
    threads.emplace_back([&context] {
      auto guard = boost::asio::make_work_guard(context);
      context.run();
    });
  std::vector<std::unique_ptr<RawH2Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<RawH2Client>(server_->port()));
  for (int i = 0; i < 4; ++i) {
    int32_t id = clients[i]->Call(Frame("c" + std::to_string(i)));
    ASSERT_TRUE(clients[i]->RunUntilClosed(id));
    EXPECT_EQ(clients[i]->stream(id).data, Frame("echo:c" + std::to_string(i)));
  }
  clients.clear();
  server_->Shutdown();
  for (auto& context : contexts) context.stop();
  for (auto& thread : threads) thread.join();
}

// --- with a raw HTTP/2 client ------------------------------------------------------------

struct FramingCase {
  const char* name;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string status;
  const char* message_part;
};

TEST_F(GrpcH2ServerTest, FramingErrorsAreInvalidArgument) {
  StartServer();
  std::vector<FramingCase> cases = {
      {"length longer than the message", Frame("abc", 0, 10), {}, "3", "truncated gRPC message: its header announces 10 bytes, 3"},
      {"truncated header", std::string("\0\0\0", 3), {}, "3", "truncated gRPC message header: 3 of 5"},
      {"flag byte 7", Frame("abc", 7), {}, "3", "compressed flag is 7"},
      {"two messages", Frame("abc") + Frame("def"), {}, "3", "more than one gRPC message"},
      {"compressed flag without grpc-encoding", Frame("abc", 1), {}, "3", "flagged compressed but the call has no grpc-encoding"},
      {"compressed flag with identity", Frame("abc", 1), {{"grpc-encoding", "identity"}}, "3", "no grpc-encoding"},
      {"gzip that is not gzip", Frame("abc", 1), {{"grpc-encoding", "gzip"}}, "3", "not valid gzip"},
      {"unknown encoding", Frame("abc", 1), {{"grpc-encoding", "br"}}, "12", "grpc-encoding br is not supported"},
      {"JSON codec", Frame("{}"), {{"content-type", "application/grpc+json"}}, "12", "application/grpc+json is not served"},
      {"malformed grpc-timeout", Frame("abc"), {{"grpc-timeout", "soon"}}, "3", "malformed grpc-timeout"},
  };
  RawH2Client client(server_->port());
  for (auto& c : cases) {
    int32_t id = client.Call(c.body, c.headers);
    ASSERT_TRUE(client.RunUntilClosed(id)) << c.name;
    auto& result = client.stream(id);
    EXPECT_EQ(result.headers[":status"], "200") << c.name;
    EXPECT_EQ(result.headers["grpc-status"], c.status) << c.name;
    EXPECT_NE(PercentDecodeGrpcMessage(result.headers["grpc-message"]).find(c.message_part), std::string::npos)
        << c.name << ": " << result.headers["grpc-message"];
  }
  int32_t unknown = client.Call(Frame("abc"), {{"grpc-encoding", "br"}});
  ASSERT_TRUE(client.RunUntilClosed(unknown));
  EXPECT_EQ(client.stream(unknown).headers["grpc-accept-encoding"], std::string(kGrpcAcceptEncoding));
  // No message at all: HEADERS with END_STREAM.
  int32_t empty = client.Open({}, true);
  ASSERT_TRUE(client.RunUntilClosed(empty));
  EXPECT_EQ(client.stream(empty).headers["grpc-status"], "3");
  // Not gRPC: 415; the connection still serves calls after all of these.
  int32_t json = client.Call("{}", {{"content-type", "application/json"}});
  ASSERT_TRUE(client.RunUntilClosed(json));
  EXPECT_EQ(client.stream(json).headers[":status"], "415");
  EXPECT_EQ(client.stream(json).headers.count("grpc-status"), 0u);
  int32_t good = client.Call(Frame("fine"));
  ASSERT_TRUE(client.RunUntilClosed(good));
  EXPECT_EQ(client.stream(good).headers["grpc-status"], "0");
  EXPECT_EQ(client.stream(good).data, Frame("echo:fine"));
  std::lock_guard lock(mutex_);
  EXPECT_EQ(calls_, 1) << "no refused call reached the handler";
}

TEST_F(GrpcH2ServerTest, CompressionsTheCollectorSends) {
  StartServer();
  RawH2Client client(server_->port());
  std::string text(5000, 'z');
  std::string zstd(ZSTD_compressBound(text.size()), '\0');
  zstd.resize(ZSTD_compress(zstd.data(), zstd.size(), text.data(), text.size(), 3));
  std::string snappy_raw;
  snappy::Compress(text.data(), text.size(), &snappy_raw);
  // Snappy's framing format: stream identifier, one compressed chunk with its masked CRC32C.
  uint32_t crc = Crc32c(text);
  uint32_t masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
  uint32_t chunk_length = uint32_t(snappy_raw.size() + 4);
  std::string framed = std::string("\xff\x06\x00\x00sNaPpY", 10) + char(0) + char(chunk_length) + char(chunk_length >> 8) +
                       char(chunk_length >> 16) + char(masked) + char(masked >> 8) + char(masked >> 16) + char(masked >> 24) + snappy_raw;
  for (auto [encoding, bytes] : {std::pair{"zstd", zstd}, std::pair{"snappy", snappy_raw}, std::pair{"snappy", framed},
                                 std::pair{"deflate", CompressForTests(text, CompressedFormat::kZlib)}}) {
    int32_t id = client.Call(Frame(bytes, 1), {{"grpc-encoding", encoding}});
    ASSERT_TRUE(client.RunUntilClosed(id)) << encoding;
    EXPECT_EQ(client.stream(id).headers["grpc-status"], "0") << encoding << ": " << client.stream(id).headers["grpc-message"];
    EXPECT_EQ(client.stream(id).data, Frame("echo:" + text)) << encoding;
  }
}

TEST_F(GrpcH2ServerTest, GrpcTimeoutIsAnsweredDeadlineExceeded) {
  StartServer();
  RawH2Client client(server_->port());
  auto started = std::chrono::steady_clock::now();
  int32_t id = client.Open({{"grpc-timeout", "100m"}}, false, "/test.Service/Hold");
  client.Send(id, Frame("x"), true);
  ASSERT_TRUE(client.RunUntilClosed(id));
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(client.stream(id).headers["grpc-status"], "4");
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 2s);
  // The handler's answer after the deadline is dropped without harm.
  ASSERT_EQ(HeldCalls(), 1u);
  held_[0](GrpcResponse::Ok("too late"));
  int32_t next = client.Call(Frame("again"));
  ASSERT_TRUE(client.RunUntilClosed(next));
  EXPECT_EQ(client.stream(next).headers["grpc-status"], "0");
}

TEST_F(GrpcH2ServerTest, StalledStreamIsAnsweredAndItsBytesReleased) {
  GrpcServerOptions options;
  options.stall_timeout = 200ms;
  StartServer(options);
  RawH2Client client(server_->port());
  int32_t id = client.Open();
  client.Send(id, Frame(std::string(1000, 'a'), 0, 100'000), false);  // 1 005 of 100 005 bytes, then nothing
  ASSERT_TRUE(client.RunUntil([&] { return server_->receiving_bytes() == 1005; }));
  ASSERT_TRUE(client.RunUntilClosed(id));
  EXPECT_EQ(client.stream(id).headers["grpc-status"], "4");
  EXPECT_NE(client.stream(id).headers["grpc-message"].find("no request data"), std::string::npos);
  EXPECT_TRUE(client.stream(id).reset) << "the client is told to stop sending (RST_STREAM)";
  EXPECT_EQ(server_->receiving_bytes(), 0u);
}

TEST_F(GrpcH2ServerTest, ReceivingBudgetRefusesPastItAndFreesTheBytes) {
  GrpcServerOptions options;
  options.receiving_budget = 128 * 1024;
  options.retry_details = [](GrpcCode, std::string_view) { return std::string("retry-info"); };
  StartServer(options);
  RawH2Client client(server_->port());
  int32_t first = client.Open();
  client.Send(first, Frame(std::string(60'000, 'a'), 0, 100'000), false);
  ASSERT_TRUE(client.RunUntil([&] { return server_->receiving_bytes() == 60'005; }));
  int32_t second = client.Open();
  client.Send(second, Frame(std::string(80'000, 'b')), true);  // 60 005 + 80 005 > 128 KiB
  ASSERT_TRUE(client.RunUntilClosed(second));
  EXPECT_EQ(client.stream(second).headers["grpc-status"], "8");
  EXPECT_EQ(client.stream(second).headers["grpc-status-details-bin"], Base64Unpadded("retry-info"));
  EXPECT_EQ(server_->receiving_bytes(), 60'005u) << "the refused stream holds nothing";
  // The first stream finishes and is served; then nothing is held.
  client.Send(first, std::string(40'000, 'a'), true);
  ASSERT_TRUE(client.RunUntilClosed(first));
  EXPECT_EQ(client.stream(first).headers["grpc-status"], "0");
  EXPECT_EQ(server_->receiving_bytes(), 0u);
}

TEST_F(GrpcH2ServerTest, OneConnectionCannotTakeTheWholeBudget) {
  GrpcServerOptions options;
  options.receiving_budget = 1 << 20;
  options.connection_receiving_cap = 100'000;
  StartServer(options);
  RawH2Client greedy(server_->port()), other(server_->port());
  int32_t first = greedy.Open();
  greedy.Send(first, Frame(std::string(60'000, 'a'), 0, 200'000), false);
  ASSERT_TRUE(greedy.RunUntil([&] { return server_->receiving_bytes() == 60'005; }));
  int32_t second = greedy.Open();
  greedy.Send(second, Frame(std::string(60'000, 'b'), 0, 200'000), false);  // 120 010 on one connection
  ASSERT_TRUE(greedy.RunUntilClosed(second));
  EXPECT_EQ(greedy.stream(second).headers["grpc-status"], "8");
  EXPECT_NE(greedy.stream(second).headers["grpc-message"].find("on this connection"), std::string::npos);
  // Another connection still has room in the budget.
  int32_t id = other.Open();
  other.Send(id, Frame(std::string(60'000, 'c')), true);
  ASSERT_TRUE(other.RunUntilClosed(id));
  EXPECT_EQ(other.stream(id).headers["grpc-status"], "0");
  EXPECT_EQ(server_->receiving_bytes(), 60'005u);
}

TEST_F(GrpcH2ServerTest, EarlyRefusalAndResetReleaseEverything) {
  GrpcServerOptions options;
  options.max_message_bytes = 1000;
  StartServer(options);
  RawH2Client client(server_->port());
  int32_t too_big = client.Open();
  client.Send(too_big, Frame("", 0, 5000).substr(0, 5), false);  // announces 5 000 bytes; refused at once
  ASSERT_TRUE(client.RunUntilClosed(too_big));
  EXPECT_EQ(client.stream(too_big).headers["grpc-status"], "8");
  EXPECT_TRUE(client.stream(too_big).reset);
  EXPECT_EQ(server_->receiving_bytes(), 0u);
}

TEST_F(GrpcH2ServerTest, KeepalivePingsAnIdleConnectionAndDropsASilentOne) {
  GrpcServerOptions options;
  options.keepalive_time = 100ms;
  options.keepalive_timeout = 200ms;
  StartServer(options);
  RawH2Client answering(server_->port());
  RawH2Client silent(server_->port(), /*auto_ping_ack=*/false);
  // Both clients are pumped together: the answering one must keep acking while we wait.
  auto run_both = [&](const std::function<bool()>& done) {
    for (auto until = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < until;) {
      silent.RunUntil(done, 5ms);
      answering.RunUntil(done, 5ms);
      if (done()) return true;
    }
    return false;
  };
  ASSERT_TRUE(run_both([&] { return silent.pings() > 0; }));
  EXPECT_TRUE(run_both([&] { return silent.disconnected(); })) << "a connection that does not answer PINGs is closed";
  ASSERT_TRUE(run_both([&] { return answering.pings() > 2; }));
  for (int i = 0; i < 3; ++i) answering.Ping();  // client PINGs are answered, not punished
  int32_t id = answering.Call(Frame("still here"));
  ASSERT_TRUE(answering.RunUntilClosed(id));
  EXPECT_EQ(answering.stream(id).headers["grpc-status"], "0");
  EXPECT_FALSE(answering.goaway());
}

TEST_F(GrpcH2ServerTest, IdleConnectionGetsGoawayAndIsClosed) {
  GrpcServerOptions options;
  options.idle_timeout = 200ms;
  StartServer(options);
  RawH2Client client(server_->port());
  int32_t id = client.Call(Frame("one"));
  ASSERT_TRUE(client.RunUntilClosed(id));
  auto closed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.RunUntil([&] { return client.disconnected(); }, 3s));
  EXPECT_TRUE(client.goaway());
  EXPECT_GE(std::chrono::steady_clock::now() - closed_at, 150ms);
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0; }));
}

TEST_F(GrpcH2ServerTest, ConnectionsPastTheCapAreClosedAndCounted) {
  GrpcServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  RawH2Client first(server_->port()), second(server_->port());
  ASSERT_TRUE(first.RunUntil([&] { return server_->connections() == 2; }));
  RawH2Client third(server_->port());
  EXPECT_TRUE(third.RunUntil([&] { return third.disconnected(); }, 2s));
  EXPECT_EQ(server_->connections_refused(), 1u);
  int32_t id = first.Call(Frame("ok"));
  ASSERT_TRUE(first.RunUntilClosed(id));
  EXPECT_EQ(first.stream(id).headers["grpc-status"], "0");
}

TEST_F(GrpcH2ServerTest, SilentClientIsClosedAfterTheHandshakeTimeout) {
  GrpcServerOptions options;
  options.handshake_timeout = 150ms;
  StartServer(options);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server_->port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  // The server's SETTINGS come at once; then, with nothing from the client, the close.
  auto started = std::chrono::steady_clock::now();
  bool closed = false;
  for (pollfd p{fd, POLLIN, 0}; !closed && ::poll(&p, 1, 2000) == 1;) {
    char buffer[256];
    closed = ::recv(fd, buffer, sizeof buffer, 0) <= 0;
  }
  EXPECT_TRUE(closed) << "closed without a frame from the client";
  EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
  ::close(fd);
}

// HTTP/2 rapid reset (CVE-2023-44487): streams opened and reset at once free their slot under
// SETTINGS_MAX_CONCURRENT_STREAMS, so only a rate limit bounds the work they start.
TEST_F(GrpcH2ServerTest, StreamsResetFasterThanTheLimitGetEnhanceYourCalm) {
  GrpcServerOptions options;
  options.stream_reset_burst = 50;
  options.stream_resets_per_second = 10;
  StartServer(options);
  RawH2Client client(server_->port());
  // Within the burst: served as usual.
  for (int i = 0; i < 40; ++i) client.Reset(client.Open());
  int32_t id = client.Call(Frame("still welcome"));
  ASSERT_TRUE(client.RunUntilClosed(id));
  EXPECT_EQ(client.stream(id).headers["grpc-status"], "0");
  EXPECT_FALSE(client.goaway());
  // Whole calls, each reset once sent: past the burst the connection is told to calm down.
  for (int i = 0; i < 1000 && !client.disconnected() && !client.goaway(); ++i) {
    int32_t call = client.Call(Frame("call " + std::to_string(i)));
    client.SendQueued();
    client.Reset(call);
    client.RunUntil([] { return false; }, 0ms);
  }
  ASSERT_TRUE(client.RunUntil([&] { return client.disconnected(); }, 3s)) << "the connection is closed after its GOAWAY";
  EXPECT_TRUE(client.goaway());
  EXPECT_EQ(client.goaway_code(), uint32_t(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(server_->connections_reset_flooding(), 1u);
  {
    std::lock_guard lock(mutex_);
    EXPECT_LE(calls_, 1 + 20) << "calls started by the reset streams are bounded by the burst";
  }
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0 && server_->receiving_bytes() == 0; }));
  // Other connections are not affected.
  RawH2Client other(server_->port());
  int32_t next = other.Call(Frame("another connection"));
  ASSERT_TRUE(other.RunUntilClosed(next));
  EXPECT_EQ(other.stream(next).headers["grpc-status"], "0");
}

// Resets the server sends count too: streams refused early (here: a message announced over the
// limit, answered and reset before the client has sent it) can be provoked as fast as reset ones.
TEST_F(GrpcH2ServerTest, StreamsTheServerResetsCountAgainstTheLimit) {
  GrpcServerOptions options;
  options.max_message_bytes = 1000;
  options.stream_reset_burst = 30;
  options.stream_resets_per_second = 10;
  StartServer(options);
  RawH2Client client(server_->port());
  int refused = 0;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 500 && !client.disconnected() && !client.goaway(); ++i) {
    int32_t id = client.Open();
    client.Send(id, Frame("", 0, 5000).substr(0, 5), false);
    if (client.RunUntilClosed(id, 1s) && client.stream(id).reset) ++refused;
  }
  EXPECT_TRUE(client.RunUntil([&] { return client.disconnected(); }, 3s));
  EXPECT_EQ(client.goaway_code(), uint32_t(NGHTTP2_ENHANCE_YOUR_CALM));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_GE(refused, 25);
  EXPECT_LE(refused, 30 + int(seconds * 10) + 2) << "the burst and what " << seconds << " s refilled";
  EXPECT_EQ(server_->connections_reset_flooding(), 1u);
}

// A bounded fuzz run of the framing: messages in every encoding the server reads, mutated
// (bits flipped, bytes inserted and removed, cut short, prefix bytes overwritten), sent with a
// random grpc-encoding in one to three DATA frames. Every call gets a gRPC status that names
// the problem (never INTERNAL or UNKNOWN), nothing stays charged, and the server still serves.
TEST_F(GrpcH2ServerTest, FuzzedFramingAlwaysGetsAStatusAndNeverInternal) {
  GrpcServerOptions options;
  options.max_message_bytes = 64 * 1024;
  StartServer(options);
  std::string text;
  for (int i = 0; text.size() < 3000; ++i) text += "span-" + std::to_string(i * 7919 % 1000) + ";";
  std::string zstd(ZSTD_compressBound(text.size()), '\0');
  zstd.resize(ZSTD_compress(zstd.data(), zstd.size(), text.data(), text.size(), 3));
  std::string snappy;
  snappy::Compress(text.data(), text.size(), &snappy);
  const std::vector<std::pair<std::string, std::string>> seeds{
      {"", Frame(text)},
      {"identity", Frame(text)},
      {"gzip", Frame(CompressForTests(text, CompressedFormat::kGzip), 1)},
      {"deflate", Frame(CompressForTests(text, CompressedFormat::kZlib), 1)},
      {"zstd", Frame(zstd, 1)},
      {"snappy", Frame(snappy, 1)},
  };
  const char* encodings[] = {"", "identity", "gzip", "deflate", "zstd", "snappy", "br", "gzip, zstd"};
  std::mt19937_64 rng(20261129);
  auto mutate = [&](std::string data) {
    for (int edits = 1 + int(rng() % 3); edits > 0; --edits) {
      size_t at = data.empty() ? 0 : size_t(rng() % data.size());
      switch (rng() % 6) {
        case 0: if (!data.empty()) data[at] = char(data[at] ^ char(1 << (rng() % 8))); break;
        case 1: data.insert(at, 1, char(rng())); break;
        case 2: if (!data.empty()) data.erase(at, 1 + rng() % 16); break;
        case 3: data.resize(at); break;
        case 4: if (!data.empty()) data[rng() % std::min<size_t>(5, data.size())] = char(rng()); break;  // the prefix
        default: data += data.substr(0, rng() % 12); break;  // a second (partial) message
      }
    }
    return data;
  };
  std::map<std::string, int> statuses;
  int sent = 0;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline) {
    RawH2Client client(server_->port());
    for (int call = 0; call < 50; ++call, ++sent) {
      const auto& [seed_encoding, seed] = seeds[rng() % seeds.size()];
      std::string body = rng() % 8 == 0 ? seed : mutate(seed);
      std::string encoding = rng() % 4 == 0 ? encodings[rng() % std::size(encodings)] : seed_encoding;
      std::vector<std::pair<std::string, std::string>> headers;
      if (!encoding.empty()) headers.emplace_back("grpc-encoding", encoding);
      int32_t id = client.Open(headers);
      size_t pieces = 1 + rng() % 3, at = 0;
      for (size_t piece = 1; piece <= pieces; ++piece) {
        size_t end = piece == pieces ? body.size() : std::min(body.size(), at + size_t(rng() % (body.size() + 1)));
        client.Send(id, body.substr(at, end - at), piece == pieces);
        client.SendQueued();  // one DATA source at a time per stream (nghttp2)
        at = end;
      }
      ASSERT_TRUE(client.RunUntilClosed(id)) << "call " << sent << " got no answer";
      auto& headers_seen = client.stream(id).headers;
      ASSERT_TRUE(headers_seen.count("grpc-status")) << "call " << sent << ": :status " << headers_seen[":status"];
      const std::string& status = headers_seen["grpc-status"];
      EXPECT_TRUE(status == "0" || status == "3" || status == "8" || status == "12")
          << "call " << sent << " (grpc-encoding '" << encoding << "'): grpc-status " << status << " " << headers_seen["grpc-message"];
      statuses[status]++;
    }
    EXPECT_FALSE(client.goaway()) << "fuzzed calls never cost the connection";
  }
  EXPECT_GT(sent, 200);
  EXPECT_GT(statuses["0"], 0);
  EXPECT_GT(statuses["3"], 0);
  for (const auto& [status, count] : statuses) std::printf("grpc-status %s: %d calls\n", status.c_str(), count);
  EXPECT_TRUE(WaitFor([&] { return server_->receiving_bytes() == 0; }));
  RawH2Client client(server_->port());
  int32_t id = client.Call(Frame("after the fuzz"));
  ASSERT_TRUE(client.RunUntilClosed(id));
  EXPECT_EQ(client.stream(id).headers["grpc-status"], "0");
}

// --- grpc_framing.h ------------------------------------------------------------------------

TEST(GrpcFramingTest, TimeoutsEncodingsAndText) {
  std::chrono::nanoseconds timeout;
  ASSERT_TRUE(ParseGrpcTimeout("250m", timeout));
  EXPECT_EQ(timeout, 250ms);
  ASSERT_TRUE(ParseGrpcTimeout("99999999H", timeout));
  EXPECT_GT(timeout, std::chrono::hours(24 * 365));
  for (const char* bad : {"", "5", "m", "123456789S", "1x", "-1S", "1.5S"}) EXPECT_FALSE(ParseGrpcTimeout(bad, timeout)) << bad;
  EXPECT_EQ(PercentEncodeGrpcMessage("a%b\nü"), "a%25b%0A%C3%BC");
  EXPECT_EQ(PercentDecodeGrpcMessage("a%25b%0A%C3%BC"), "a%b\nü");
  EXPECT_EQ(Base64Unpadded("f"), "Zg");
  EXPECT_EQ(Base64Unpadded("fo"), "Zm8");
  EXPECT_EQ(Base64Unpadded("foo"), "Zm9v");
  EXPECT_EQ(ParseGrpcEncoding("gzip"), GrpcEncoding::kGzip);
  EXPECT_EQ(ParseGrpcEncoding("gzipx"), GrpcEncoding::kUnknown);
  auto zstd_bomb = [] {
    std::string text(2'000'000, 'q'), out(ZSTD_compressBound(text.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3));
    return out;
  }();
  EXPECT_EQ(DecompressGrpcMessage(zstd_bomb, GrpcEncoding::kZstd, 1'000'000).status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(DecompressGrpcMessage(zstd_bomb.substr(0, zstd_bomb.size() - 3), GrpcEncoding::kZstd, 3'000'000).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecompressGrpcMessage("not snappy at all", GrpcEncoding::kSnappy, 1000).status().code(), StatusCode::kInvalidArgument);
}

TEST(GrpcFramingTest, UnaryBodyIsCheckedAsItArrives) {
  GrpcMessageView view;
  EXPECT_TRUE(CheckUnaryGrpcBody(Frame("abcdef").substr(0, 7), false, 100, nullptr).ok()) << "incomplete: keep reading";
  EXPECT_EQ(CheckUnaryGrpcBody(Frame("abcdef").substr(0, 7), true, 100, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckUnaryGrpcBody(std::string(1, '\x02'), false, 100, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckUnaryGrpcBody(Frame("", 0, 101).substr(0, 5), false, 100, nullptr).code(), StatusCode::kTooLarge);
  EXPECT_EQ(CheckUnaryGrpcBody(Frame("ab") + std::string(1, '\0'), false, 100, nullptr).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(CheckUnaryGrpcBody(Frame("ab", 1), true, 100, &view).ok());
  EXPECT_TRUE(view.compressed);
  EXPECT_EQ(view.bytes, "ab");
  ASSERT_TRUE(CheckUnaryGrpcBody(Frame(""), true, 100, &view).ok()) << "an empty message is a message";
  EXPECT_EQ(view.bytes, "");
}

}  // namespace
}  // namespace tracery
