#include "common/grpc_h2_server.h"

#include <malloc.h>
#include <nghttp2/nghttp2.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/end_of_turn.h"
#include "common/tcp_acceptor.h"

namespace tracery {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

class Connection;

// What the connections of one listener share.
struct Listener {
  Listener(GrpcServerOptions o, std::map<std::string, GrpcUnaryHandler, std::less<>> m);
  ~Listener() {
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_option_del(option);
  }
  const GrpcServerOptions options;
  const uint64_t connection_receiving_cap;
  const std::map<std::string, GrpcUnaryHandler, std::less<>> methods;
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;
  std::atomic<uint64_t> receiving_bytes{0};
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> reset_floods{0};
  std::atomic<bool> trim_pending{false};
  std::mutex mutex;  // guards live and stopping
  std::list<std::weak_ptr<Connection>> live;
  bool stopping = false;
};

// One request stream, from its HEADERS to its close.
struct Stream {
  Stream(int32_t stream_id, Clock::time_point now) : id(stream_id), started(now), last_data(now) {}
  enum class State { kReceiving, kHandling, kAnswered };
  const int32_t id;
  State state = State::kReceiving;
  bool request_complete = false;     // END_STREAM received
  bool reset_after_answer = false;   // answered before END_STREAM: RST_STREAM(NO_ERROR) follows
  std::string method, path, content_type, encoding, timeout;
  std::vector<std::pair<std::string, std::string>> metadata;
  size_t header_bytes = 0;
  const GrpcUnaryHandler* handler = nullptr;
  GrpcEncoding message_encoding = GrpcEncoding::kIdentity;
  std::string body;  // the framed message as it arrives
  uint64_t charged = 0;
  Clock::time_point started, last_data, deadline = Clock::time_point::max();
  std::string response;  // prefix + response message while DATA is being sent
  size_t response_sent = 0;
};

nghttp2_nv Header(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())), reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
          name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

GrpcResponse ResponseFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kTooLarge:
    case StatusCode::kResourceExhausted: return GrpcResponse::Error(GrpcCode::kResourceExhausted, status.message());
    case StatusCode::kUnsupportedMedia: return GrpcResponse::Error(GrpcCode::kUnimplemented, status.message());
    case StatusCode::kInvalidArgument: return GrpcResponse::Error(GrpcCode::kInvalidArgument, status.message());
    default: return GrpcResponse::Error(GrpcCode::kInternal, status.message());
  }
}

// The HTTP/2 and gRPC side of a connection; the transport (plaintext or TLS) is a subclass.
// Everything runs on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::any_io_executor executor, std::shared_ptr<Listener> listener)
      : executor_(std::move(executor)),
        listener_(std::move(listener)),
        post_to_loop_([executor = executor_](std::function<void()> work) { asio::post(executor, std::move(work)); }),
        timer_(executor_),
        opened_(Clock::now()),
        reset_tokens_(listener_->options.stream_reset_burst),
        reset_refilled_(opened_) {
    listener_->connections.fetch_add(1);
  }
  virtual ~Connection() {
    if (session_) nghttp2_session_del(session_);
    for (auto& [id, stream] : streams_) Release(*stream, /*may_trim=*/false);  // the io context may be going away
    if (registered_) {
      std::lock_guard lock(listener_->mutex);
      listener_->live.erase(live_entry_);
    }
    listener_->connections.fetch_sub(1);
  }

  // Registers for Shutdown and starts the handshake (TLS) or the HTTP/2 session.
  void Start() {
    {
      std::lock_guard lock(listener_->mutex);
      if (listener_->stopping) return;  // dropped: the socket closes with us
      live_entry_ = listener_->live.insert(listener_->live.end(), weak_from_this());
      registered_ = true;
    }
    asio::dispatch(executor_, [self = shared_from_this()] {
      self->Arm(self->opened_ + self->listener_->options.handshake_timeout);
      self->Handshake();
    });
  }
  const asio::any_io_executor& executor() const { return executor_; }

  // GOAWAY: streams already begun finish, then the connection closes.
  void BeginShutdown() {
    if (closed_) return;
    if (!session_) return Close();
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    Flush();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    for (auto& [id, stream] : streams_) Release(*stream);
    CloseTransport();
  }

 protected:
  virtual void Handshake() = 0;   // then Begin(), or Close()
  virtual void StartRead() = 0;   // into read_buffer_; then OnRead
  virtual void StartWrite() = 0;  // all of writing_; then OnWritten
  virtual void CloseTransport() = 0;
  virtual void ShutdownSend() = 0;  // after the last frame (plaintext: a TCP half-close)

  void Begin() {
    if (closed_) return;
    if (nghttp2_session_server_new2(&session_, listener_->callbacks, this, listener_->option) != 0) return Close();
    const GrpcServerOptions& options = listener_->options;
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options.stream_window},
                                         {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options.max_header_bytes}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, int32_t(options.connection_window));
    last_read_ = idle_since_ = Clock::now();
    Arm(std::min(last_read_ + options.keepalive_time, idle_since_ + options.idle_timeout));
    Flush();
    StartRead();
  }

  void OnRead(error_code ec, size_t bytes) {
    if (closed_) return;
    if (ec) return Close();
    if (lingering_) return StartRead();  // the session is over: dropped
    now_ = last_read_ = Clock::now();
    busy_ = true;
    ssize_t used = nghttp2_session_mem_recv(session_, read_buffer_.data(), bytes);
    busy_ = false;
    if (used < 0) {
      spdlog::debug("grpc: closing a connection: {}", nghttp2_strerror(int(used)));
      return Close();
    }
    Flush();
    if (!closed_) StartRead();
  }

  void OnWritten(error_code ec) {
    writing_active_ = false;
    writing_.clear();
    if (ec) return Close();
    Flush();
  }

  std::array<uint8_t, 16 * 1024> read_buffer_;
  std::string writing_;
  asio::any_io_executor executor_;
  std::shared_ptr<Listener> listener_;
  const EndOfTurnScope::Post post_to_loop_;

 private:
  friend struct Callbacks;

  // Sends what nghttp2 has queued; closes once the session wants neither to read nor to write
  // (GOAWAY exchanged and no stream left). Deferred while inside nghttp2 or a sweep.
  void Flush() {
    if (busy_ || writing_active_ || closed_ || !session_) return;
    std::string out;
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return Close();
      if (n == 0) break;
      out.append(reinterpret_cast<const char*>(data), size_t(n));
      if (out.size() >= 256 * 1024) break;
    }
    if (out.empty()) {
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) Linger();
      return;
    }
    writing_active_ = true;
    writing_ = std::move(out);
    StartWrite();
  }

  // The session is over (GOAWAY sent, no stream left). Closing now, with bytes of the client's
  // unread, would reset the connection, and a reset can make the client drop the GOAWAY it had
  // not read yet; so the write side is shut and what still arrives is read and dropped until
  // the client closes, for at most a second.
  void Linger() {
    if (lingering_ || closed_) return;
    lingering_ = true;
    ShutdownSend();
    linger_until_ = Clock::now() + std::chrono::seconds(1);
    Arm(linger_until_);
  }

  // Flushes once the handlers queued now have run (the rest of an answer burst).
  void FlushAfterBurst() {
    if (flush_posted_) return;
    flush_posted_ = true;
    asio::post(executor_, [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->Flush();
    });
  }

  // One timer per connection, armed for the earliest thing due (a stream's deadline or stall,
  // the handshake, keepalive, idleness); Sweep looks at everything and re-arms.
  void Arm(Clock::time_point when) {
    if (closed_ || when >= armed_) return;
    armed_ = when;
    timer_.expires_at(when);
    timer_.async_wait([self = shared_from_this(), when](error_code ec) {
      if (ec || self->armed_ != when) return;
      self->armed_ = Clock::time_point::max();
      self->Sweep();
    });
  }

  void Sweep() {
    if (closed_) return;
    const GrpcServerOptions& options = listener_->options;
    Clock::time_point now = Clock::now(), next = Clock::time_point::max();
    if (lingering_) return now >= linger_until_ ? Close() : Arm(linger_until_);
    if (!saw_frame_) {  // the TLS handshake or the client preface is late
      if (now >= opened_ + options.handshake_timeout) return Close();
      next = opened_ + options.handshake_timeout;
    }
    if (!session_) return Arm(next);
    busy_ = true;
    for (auto& [id, stream] : streams_) {
      Stream& s = *stream;
      if (s.state == Stream::State::kAnswered) continue;
      Clock::time_point due = s.deadline;
      const char* why = "the call's deadline (grpc-timeout) passed before its answer was ready";
      if (s.state == Stream::State::kReceiving && !s.request_complete) {
        Clock::time_point stall = s.last_data + options.stall_timeout, whole = s.started + options.message_timeout;
        if (stall < due) due = stall, why = "no request data arrived for the stall timeout";
        if (whole < due) due = whole, why = "the request message was not received in time";
      }
      if (now >= due) Answer(s, GrpcResponse::Error(GrpcCode::kDeadlineExceeded, why));
      else next = std::min(next, due);
    }
    busy_ = false;
    if (ping_deadline_ != Clock::time_point::max()) {
      if (now >= ping_deadline_) {
        spdlog::debug("grpc: closing a connection whose keepalive PING got no answer");
        return Close();
      }
      next = std::min(next, ping_deadline_);
    } else if (now >= last_read_ + options.keepalive_time) {
      nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
      ping_deadline_ = now + options.keepalive_timeout;
      next = std::min(next, ping_deadline_);
    } else {
      next = std::min(next, last_read_ + options.keepalive_time);
    }
    if (streams_.empty() && !idle_goaway_) {
      if (now >= idle_since_ + options.idle_timeout) {
        idle_goaway_ = true;
        nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                              NGHTTP2_NO_ERROR, nullptr, 0);
      } else {
        next = std::min(next, idle_since_ + options.idle_timeout);
      }
    }
    Arm(next);
    Flush();
  }

  Stream* Find(int32_t id) {
    return session_ ? static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, id)) : nullptr;
  }

  void Release(Stream& s, bool may_trim = true) {
    if (s.charged) listener_->receiving_bytes.fetch_sub(s.charged);
    receiving_ -= s.charged;
    s.charged = 0;
    bool large = s.body.capacity() >= kLargeBody;
    std::string().swap(s.body);
    if (large && may_trim) TrimFreedMemorySoon();
  }

  // A large body freed without being handed on (a stream refused, cut or reset midway) may lie
  // in a malloc arena rather than in its own mapping (glibc raises its mmap threshold after
  // freeing one large block), where freeing it keeps it resident: stalled senders' memory
  // stayed after they were cut. So a trim gives it back, once for the bodies freed within
  // 200 ms of each other. Bodies handed to the handler are not freed here.
  static constexpr size_t kLargeBody = 1 << 20;
  void TrimFreedMemorySoon() {
    if (listener_->trim_pending.exchange(true)) return;
    auto timer = std::make_shared<asio::steady_timer>(executor_, std::chrono::milliseconds(200));
    timer->async_wait([timer, listener = listener_](error_code ec) {
      listener->trim_pending = false;
      if (!ec) malloc_trim(0);
    });
  }

  // --- nghttp2 callbacks (through Callbacks below) ------------------------------------------

  int OnBeginRequest(int32_t id) {
    auto stream = std::make_unique<Stream>(id, now_);
    nghttp2_session_set_stream_user_data(session_, id, stream.get());
    streams_.emplace(id, std::move(stream));
    return 0;
  }

  int OnRequestHeader(Stream& s, std::string_view name, std::string_view value) {
    s.header_bytes += name.size() + value.size() + 32;
    if (s.header_bytes > listener_->options.max_header_bytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM
    if (name == ":method") s.method = value;
    else if (name == ":path") s.path = value;
    else if (name == "content-type") s.content_type = value;
    else if (name == "grpc-encoding") s.encoding = value;
    else if (name == "grpc-timeout") s.timeout = value;
    else if (name[0] != ':' && name != "te" && name != "grpc-accept-encoding") s.metadata.emplace_back(name, value);
    return 0;
  }

  // The request's headers are all in: what can be refused before its message is refused now.
  void OnRequestHeaders(Stream& s) {
    if (s.method != "POST") return AnswerHttp(s, "405");
    std::string_view type = s.content_type;
    constexpr std::string_view kGrpc = "application/grpc";
    if (type.substr(0, kGrpc.size()) != kGrpc || (type.size() > kGrpc.size() && type[kGrpc.size()] != '+' && type[kGrpc.size()] != ';'))
      return AnswerHttp(s, "415");
    if (type.size() > kGrpc.size() && type[kGrpc.size()] == '+') {
      std::string_view codec = type.substr(kGrpc.size() + 1);
      codec = codec.substr(0, codec.find(';'));
      if (codec != "proto")
        return Answer(s, GrpcResponse::Error(GrpcCode::kUnimplemented, "content-type " + s.content_type +
                                                                           " is not served: messages are protobuf (application/grpc or application/grpc+proto)"));
    }
    auto method = listener_->methods.find(s.path);
    if (method == listener_->methods.end()) return Answer(s, GrpcResponse::Error(GrpcCode::kUnimplemented, "unknown method " + s.path));
    s.handler = &method->second;
    s.message_encoding = ParseGrpcEncoding(s.encoding.empty() ? "identity" : s.encoding);
    if (s.message_encoding == GrpcEncoding::kUnknown)
      return Answer(s, GrpcResponse::Error(GrpcCode::kUnimplemented, "grpc-encoding " + s.encoding + " is not supported; accepted: " +
                                                                         std::string(kGrpcAcceptEncoding)));
    Clock::time_point due = std::min(s.started + listener_->options.stall_timeout, s.started + listener_->options.message_timeout);
    if (!s.timeout.empty()) {
      std::chrono::nanoseconds timeout;
      if (!ParseGrpcTimeout(s.timeout, timeout))
        return Answer(s, GrpcResponse::Error(GrpcCode::kInvalidArgument, "malformed grpc-timeout " + s.timeout));
      s.deadline = s.started + std::chrono::duration_cast<Clock::duration>(timeout);
      due = std::min(due, s.deadline);
    }
    Arm(due);
  }

  int OnData(int32_t id, const uint8_t* data, size_t length) {
    Stream* s = Find(id);
    if (!s || s->state != Stream::State::kReceiving) return 0;  // answered: what still comes is dropped
    s->last_data = now_;
    bool connection_full = receiving_ + length > listener_->connection_receiving_cap;
    if (connection_full || listener_->receiving_bytes.fetch_add(length) + length > listener_->options.receiving_budget) {
      if (!connection_full) listener_->receiving_bytes.fetch_sub(length);
      std::string message = connection_full ? "too many request bytes being received on this connection; retry later"
                                            : "too many request bytes being received by the server; retry later";
      std::string details = listener_->options.retry_details ? listener_->options.retry_details(GrpcCode::kResourceExhausted, message) : "";
      Answer(*s, GrpcResponse::Error(GrpcCode::kResourceExhausted, std::move(message), std::move(details)));
      return 0;
    }
    s->charged += length;
    receiving_ += length;
    s->body.append(reinterpret_cast<const char*>(data), length);
    Status checked = CheckUnaryGrpcBody(s->body, false, listener_->options.max_message_bytes, nullptr);
    if (!checked.ok()) {
      Answer(*s, ResponseFor(checked));
      return 0;
    }
    // Room for the whole message once its prefix tells its length (within max_message_bytes,
    // just checked): the body then grows without copies, and without the freed halves that
    // doubling leaves behind, which kept stalled streams' memory resident past their release.
    // Pages not yet written are not resident, so a stalled stream holds what it sent.
    if (s->body.size() >= 5) {
      const auto* prefix = reinterpret_cast<const uint8_t*>(s->body.data());
      uint64_t whole = 5 + ((uint64_t(prefix[1]) << 24) | (uint64_t(prefix[2]) << 16) | (uint64_t(prefix[3]) << 8) | prefix[4]);
      if (s->body.capacity() < whole) s->body.reserve(whole);
    }
    return 0;
  }

  // END_STREAM: the message is checked, decompressed and given to its handler.
  void OnRequestComplete(Stream& s) {
    s.request_complete = true;
    if (s.state != Stream::State::kReceiving) return;
    GrpcMessageView view;
    Status checked = CheckUnaryGrpcBody(s.body, true, listener_->options.max_message_bytes, &view);
    if (!checked.ok()) return Answer(s, ResponseFor(checked));
    GrpcRequest request;
    if (view.compressed) {
      if (s.message_encoding == GrpcEncoding::kIdentity)
        return Answer(s, GrpcResponse::Error(GrpcCode::kInvalidArgument,
                                             "the gRPC message is flagged compressed but the call has no grpc-encoding"));
      auto message = DecompressGrpcMessage(view.bytes, s.message_encoding, listener_->options.max_message_bytes);
      if (!message.ok()) return Answer(s, ResponseFor(message.status()));
      request.message = std::move(message).value();
    } else {
      s.body.erase(0, s.body.size() - view.bytes.size());
      request.message = std::move(s.body);
    }
    Release(s);
    s.state = Stream::State::kHandling;
    request.method = s.path;
    request.metadata = std::move(s.metadata);
    request.deadline = s.deadline;
    // Answers come back in bursts (one WAL round answers every call it held): each is queued
    // in nghttp2 as it arrives, and one flush after the burst sends them in one write.
    GrpcRespond respond = [weak = weak_from_this(), executor = executor_, id = s.id](GrpcResponse response) {
      asio::post(executor, [weak, id, response = std::move(response)]() mutable {
        auto self = weak.lock();
        if (!self || self->closed_) return;
        Stream* stream = self->Find(id);
        if (!stream || stream->state != Stream::State::kHandling) return;
        self->busy_ = true;  // Answer's Flush waits for the burst's
        self->Answer(*stream, std::move(response));
        self->busy_ = false;
        self->FlushAfterBurst();
      });
    };
    try {
      // Work the handler defers (the WAL's round) runs after the rest of this read and the
      // other connections' ready now: the calls that came together share a write.
      EndOfTurnScope turn(post_to_loop_);
      (*s.handler)(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      spdlog::error("grpc: handler of {} failed: {}", s.path, e.what());
      Answer(s, GrpcResponse::Error(GrpcCode::kInternal, "internal error"));
    }
  }

  void OnStreamClosed(int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    Release(*it->second);
    streams_.erase(it);
    if (streams_.empty()) {
      idle_since_ = Clock::now();
      Arm(idle_since_ + listener_->options.idle_timeout);
    }
  }

  // After an answer sent before the request ended, the client is told to stop sending.
  void OnFrameSent(const nghttp2_frame* frame) {
    if (frame->hd.type == NGHTTP2_RST_STREAM) return CountStreamReset();
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return;
    Stream* s = Find(frame->hd.stream_id);
    if (s && s->reset_after_answer && !nghttp2_session_get_stream_remote_close(session_, s->id))
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
  }

  // A stream reset, received or sent: one token of the connection's bucket. With none left the
  // session ends with GOAWAY(ENHANCE_YOUR_CALM) (streams already begun are not waited for);
  // Flush closes the connection once it is sent.
  void CountStreamReset() {
    const GrpcServerOptions& options = listener_->options;
    Clock::time_point now = Clock::now();
    reset_tokens_ = std::min<double>(options.stream_reset_burst,
                                     reset_tokens_ + std::chrono::duration<double>(now - reset_refilled_).count() *
                                                         options.stream_resets_per_second);
    reset_refilled_ = now;
    if (reset_tokens_ >= 1) {
      reset_tokens_ -= 1;
      return;
    }
    if (reset_flooding_ || !session_) return;
    reset_flooding_ = true;
    listener_->reset_floods.fetch_add(1);
    spdlog::warn("grpc: closing a connection that resets streams faster than {} a second (burst {}): GOAWAY ENHANCE_YOUR_CALM",
                 options.stream_resets_per_second, options.stream_reset_burst);
    nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  }

  // --- answers ------------------------------------------------------------------------------

  void Answer(Stream& s, GrpcResponse response) {
    if (s.state == Stream::State::kAnswered) return;
    s.state = Stream::State::kAnswered;
    s.reset_after_answer = !s.request_complete;
    Release(s);
    if (response.code == GrpcCode::kOk) {
      s.response.reserve(5 + response.body.size());
      uint32_t length = uint32_t(response.body.size());
      s.response = {char(0), char(length >> 24), char(length >> 16), char(length >> 8), char(length)};
      s.response += response.body;
      nghttp2_nv headers[] = {Header(":status", "200"), Header("content-type", "application/grpc"),
                              Header("grpc-accept-encoding", kGrpcAcceptEncoding)};
      nghttp2_data_provider provider;
      provider.source.ptr = &s;
      provider.read_callback = &Connection::ReadResponse;
      nghttp2_submit_response(session_, s.id, headers, std::size(headers), &provider);
    } else {
      // Trailers-only: one HEADERS frame that ends the stream.
      std::string code = std::to_string(int(response.code)), message = PercentEncodeGrpcMessage(response.message);
      std::string details = Base64Unpadded(response.status_details);
      std::vector<nghttp2_nv> headers{Header(":status", "200"), Header("content-type", "application/grpc"),
                                      Header("grpc-status", code), Header("grpc-accept-encoding", kGrpcAcceptEncoding)};
      if (!message.empty()) headers.push_back(Header("grpc-message", message));
      if (!details.empty()) headers.push_back(Header("grpc-status-details-bin", details));
      nghttp2_submit_response(session_, s.id, headers.data(), headers.size(), nullptr);
    }
    Flush();
  }

  // A refusal of the request as HTTP, not gRPC (wrong method or content type).
  void AnswerHttp(Stream& s, std::string_view status) {
    s.state = Stream::State::kAnswered;
    s.reset_after_answer = !s.request_complete;
    Release(s);
    nghttp2_nv headers[] = {Header(":status", status), Header("content-type", "text/plain; charset=utf-8")};
    nghttp2_submit_response(session_, s.id, headers, std::size(headers), nullptr);
    Flush();
  }

  static ssize_t ReadResponse(nghttp2_session* session, int32_t id, uint8_t* buffer, size_t length, uint32_t* flags,
                              nghttp2_data_source* source, void*) {
    auto* s = static_cast<Stream*>(source->ptr);
    size_t n = std::min(length, s->response.size() - s->response_sent);
    std::memcpy(buffer, s->response.data() + s->response_sent, n);
    s->response_sent += n;
    if (s->response_sent == s->response.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      nghttp2_nv trailers[] = {Header("grpc-status", "0")};
      if (nghttp2_submit_trailer(session, id, trailers, std::size(trailers)) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::string().swap(s->response);
    }
    return ssize_t(n);
  }

  asio::steady_timer timer_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::list<std::weak_ptr<Connection>>::iterator live_entry_;
  bool registered_ = false;
  bool closed_ = false;
  bool busy_ = false;  // inside nghttp2 or a sweep: Flush waits
  bool writing_active_ = false;
  bool saw_frame_ = false;
  bool idle_goaway_ = false;
  bool reset_flooding_ = false;
  bool flush_posted_ = false;
  bool lingering_ = false;
  Clock::time_point linger_until_;
  uint64_t receiving_ = 0;  // request bytes this connection's streams hold (connection_receiving_cap)
  const Clock::time_point opened_;
  double reset_tokens_;
  Clock::time_point reset_refilled_;
  Clock::time_point now_, last_read_, idle_since_;
  Clock::time_point armed_ = Clock::time_point::max();
  Clock::time_point ping_deadline_ = Clock::time_point::max();
};

// nghttp2's C callbacks, forwarding to the connection (user_data).
struct Callbacks {
  static Connection& Of(void* user) { return *static_cast<Connection*>(user); }

  static int BeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    return Of(user).OnBeginRequest(frame->hd.stream_id);
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t name_length,
                      const uint8_t* value, size_t value_length, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers: ignored
    Stream* s = Of(user).Find(frame->hd.stream_id);
    if (!s || name_length == 0) return 0;
    return Of(user).OnRequestHeader(*s, {reinterpret_cast<const char*>(name), name_length},
                                    {reinterpret_cast<const char*>(value), value_length});
  }
  static int FrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Connection& c = Of(user);
    c.saw_frame_ = true;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        Stream* s = c.Find(frame->hd.stream_id);
        if (!s) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          s->request_complete = end;
          c.OnRequestHeaders(*s);
        }
        if (end) c.OnRequestComplete(*s);
        return 0;
      }
      case NGHTTP2_DATA: {
        Stream* s = end ? c.Find(frame->hd.stream_id) : nullptr;
        if (s) c.OnRequestComplete(*s);
        return 0;
      }
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) c.ping_deadline_ = Clock::time_point::max();
        return 0;
      case NGHTTP2_RST_STREAM: c.CountStreamReset(); return 0;
      default: return 0;
    }
  }
  static int DataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t length, void* user) {
    return Of(user).OnData(id, data, length);
  }
  static int StreamClosed(nghttp2_session*, int32_t id, uint32_t, void* user) {
    Of(user).OnStreamClosed(id);
    return 0;
  }
  static int FrameSent(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Of(user).OnFrameSent(frame);
    return 0;
  }
};

Listener::Listener(GrpcServerOptions o, std::map<std::string, GrpcUnaryHandler, std::less<>> m)
    : options(std::move(o)),
      connection_receiving_cap(options.connection_receiving_cap
                                   ? options.connection_receiving_cap
                                   : std::min(options.receiving_budget,
                                              std::max(options.receiving_budget / 4, options.max_message_bytes + 5))),
      methods(std::move(m)) {
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::BeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::FrameReceived);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::DataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::StreamClosed);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, Callbacks::FrameSent);
  nghttp2_option_new(&option);
}

class PlainConnection final : public Connection {
 public:
  PlainConnection(tcp::socket socket, std::shared_ptr<Listener> listener)
      : Connection(socket.get_executor(), std::move(listener)), socket_(std::move(socket)) {}

 private:
  void Handshake() override { Begin(); }
  void StartRead() override {
    socket_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this(), this](error_code ec, size_t n) { OnRead(ec, n); });
  }
  void StartWrite() override {
    asio::async_write(socket_, asio::buffer(writing_), [self = shared_from_this(), this](error_code ec, size_t) { OnWritten(ec); });
  }
  void CloseTransport() override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
  void ShutdownSend() override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
  tcp::socket socket_;
};

class TlsConnection final : public Connection {
 public:
  // `context` is kept for the connection's life: a reload replaces the listener's, not ours.
  TlsConnection(tcp::socket socket, std::shared_ptr<asio::ssl::context> context, std::shared_ptr<Listener> listener)
      : Connection(socket.get_executor(), std::move(listener)), context_(std::move(context)), stream_(std::move(socket), *context_) {}

 private:
  void Handshake() override {
    stream_.async_handshake(asio::ssl::stream_base::server, [self = shared_from_this(), this](error_code ec) {
      std::string alpn = ec ? "" : NegotiatedAlpn(stream_.native_handle());
      if (ec || (!alpn.empty() && alpn != "h2")) {
        spdlog::debug("grpc: TLS handshake failed: {}", ec ? ec.message() : "client chose " + alpn + ", not h2");
        return Close();
      }
      Begin();
    });
  }
  void StartRead() override {
    stream_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this(), this](error_code ec, size_t n) { OnRead(ec, n); });
  }
  void StartWrite() override {
    asio::async_write(stream_, asio::buffer(writing_), [self = shared_from_this(), this](error_code ec, size_t) { OnWritten(ec); });
  }
  void CloseTransport() override {
    error_code ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.lowest_layer().close(ignored);
  }
  void ShutdownSend() override {}  // no close_notify: the close follows when the client's ends
  std::shared_ptr<asio::ssl::context> context_;  // before stream_, which uses it
  asio::ssl::stream<tcp::socket> stream_;
};

}  // namespace

struct GrpcH2Server::Impl {
  Impl(asio::io_context& io_context, std::shared_ptr<Listener> l) : io(io_context), listener(std::move(l)) {}

  void Accept(tcp::socket socket) {
    if (listener->connections.load() >= listener->options.max_connections) {
      listener->refused.fetch_add(1);
      error_code ignored;
      socket.close(ignored);
      return;
    }
    std::shared_ptr<Connection> connection;
    if (listener->options.tls)
      connection = std::make_shared<TlsConnection>(std::move(socket), listener->options.tls->Current(), listener);
    else
      connection = std::make_shared<PlainConnection>(std::move(socket), listener);
    connection->Start();
  }

  // The connections alive now, for Shutdown.
  std::vector<std::shared_ptr<Connection>> Live() {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard lock(listener->mutex);
    listener->stopping = true;
    for (auto& weak : listener->live)
      if (auto connection = weak.lock()) out.push_back(std::move(connection));
    return out;
  }

  // Waits until every connection is gone or `until` passes (not at all when nothing runs the io).
  void WaitForConnections(Clock::time_point until) {
    auto stopped = [&] {
      for (auto* context : listener->options.connection_contexts)
        if (context->stopped()) return true;
      return io.stopped();
    };
    while (listener->connections.load() > 0 && Clock::now() < until && !stopped())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  asio::io_context& io;
  std::unique_ptr<TcpAcceptor> acceptor;
  std::shared_ptr<Listener> listener;
  bool shut_down = false;
};

GrpcH2Server::GrpcH2Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcH2Server::~GrpcH2Server() { Shutdown(); }

Result<std::unique_ptr<GrpcH2Server>> GrpcH2Server::Bind(asio::io_context& io, const std::string& address, uint16_t port,
                                                         GrpcServerOptions options,
                                                         std::map<std::string, GrpcUnaryHandler, std::less<>> methods) {
  auto impl = std::make_unique<Impl>(io, std::make_shared<Listener>(std::move(options), std::move(methods)));
  auto acceptor = TcpAcceptor::Bind(io, address, port, impl->listener->options.connection_contexts, "grpc");
  if (!acceptor.ok()) return acceptor.status();
  impl->acceptor = std::move(acceptor).value();
  return std::unique_ptr<GrpcH2Server>(new GrpcH2Server(std::move(impl)));
}

void GrpcH2Server::Start() {
  impl_->acceptor->Start([impl = impl_.get()](tcp::socket socket) { impl->Accept(std::move(socket)); });
}

void GrpcH2Server::Shutdown() {
  if (!impl_ || impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->acceptor->Close();
  for (auto& connection : impl_->Live())
    asio::post(connection->executor(), [connection] { connection->BeginShutdown(); });
  impl_->WaitForConnections(Clock::now() + impl_->listener->options.shutdown_grace);
  for (auto& connection : impl_->Live()) asio::post(connection->executor(), [connection] { connection->Close(); });
  impl_->WaitForConnections(Clock::now() + std::chrono::seconds(1));
}

uint16_t GrpcH2Server::port() const { return impl_->acceptor->port(); }
uint64_t GrpcH2Server::connections_refused() const { return impl_->listener->refused.load(); }
uint64_t GrpcH2Server::connections_reset_flooding() const { return impl_->listener->reset_floods.load(); }
uint64_t GrpcH2Server::receiving_bytes() const { return impl_->listener->receiving_bytes.load(); }
size_t GrpcH2Server::connections() const { return impl_->listener->connections.load(); }

}  // namespace tracery
