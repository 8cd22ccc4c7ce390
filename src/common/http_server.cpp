#include "common/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "common/end_of_turn.h"
#include "common/tcp_acceptor.h"

namespace tracery {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

unsigned HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kTooLarge: return 413;
    case StatusCode::kUnsupportedMedia: return 415;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

PrefaceMatch MatchHttp2Preface(std::string_view first_bytes) {
  size_t n = std::min(first_bytes.size(), kHttp2Preface.size());
  if (first_bytes.substr(0, n) != kHttp2Preface.substr(0, n)) return PrefaceMatch::kNotHttp2;
  return n == kHttp2Preface.size() ? PrefaceMatch::kHttp2 : PrefaceMatch::kUndecided;
}

bool SplitHostPort(const std::string& endpoint, std::string& host, uint16_t& port) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) return false;
  host = endpoint.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  std::string digits = endpoint.substr(colon + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return ec == std::errc() && p == digits.data() + digits.size();
}

void AppendResponseHead(const HttpResponse& response, unsigned version, bool keep_alive, std::string& out) {
  char digits[24];
  auto append_number = [&](uint64_t value) {
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, end);
  };
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(response.status);
  out += ' ';
  out += http::obsolete_reason(http::int_to_status(response.status));
  out += "\r\nServer: tracery\r\nContent-Type: ";
  out += response.content_type;
  out += "\r\n";
  for (const auto& [name, value] : response.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  // HTTP/1.1 is persistent unless it says close; HTTP/1.0 only when it says keep-alive.
  if (version == 10 && keep_alive) out += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) out += "Connection: close\r\n";
  out += "Content-Length: ";
  append_number(response.body.size());
  out += "\r\n\r\n";
}

namespace {

// What the connections of one listener share.
struct Listener {
  Listener(HttpServerOptions o, HttpHandler h) : options(o), handler(std::move(h)) {}
  const HttpServerOptions options;
  const HttpHandler handler;
  std::atomic<uint64_t> receiving_bytes{0};
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<bool> trim_pending{false};
  std::atomic<uint64_t> handshakes_failed{0};

  // Connections handed off as HTTP/2, until they close. Their owner closes them without
  // telling us, so each is remembered by descriptor and socket cookie (unique per socket;
  // the descriptor number is reused after a close) and looked at again when counting.
  std::mutex handed_off_mutex;
  std::vector<std::pair<int, uint64_t>> handed_off;
  std::chrono::steady_clock::time_point handed_off_checked;

  static bool Cookie(int fd, uint64_t& cookie) {
    socklen_t length = sizeof cookie;
    return getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length) == 0 && length == sizeof cookie;
  }
  void HandOff(int fd) {
    uint64_t cookie = 0;
    bool tracked = Cookie(fd, cookie);
    if (tracked) {
      std::lock_guard lock(handed_off_mutex);
      handed_off.emplace_back(fd, cookie);
    }
    options.http2_handoff(fd);
  }
  // Handed-off connections still open; rechecked at most every second (it costs a system
  // call per connection).
  size_t OpenHandedOff() {
    std::lock_guard lock(handed_off_mutex);
    auto now = std::chrono::steady_clock::now();
    if (handed_off.empty() || now - handed_off_checked < std::chrono::seconds(1)) return handed_off.size();
    handed_off_checked = now;
    std::erase_if(handed_off, [](const std::pair<int, uint64_t>& entry) {
      uint64_t cookie = 0;
      return !Cookie(entry.first, cookie) || cookie != entry.second;
    });
    return handed_off.size();
  }
};

EndOfTurnScope::Post PostTo(const asio::any_io_executor& executor) {
  return [executor](std::function<void()> work) { asio::post(executor, std::move(work)); };
}

// One HTTP/1.1 connection, plaintext or TLS (kTls: the same logic over an ssl_stream, after a
// handshake; a TLS connection whose client chose h2 by ALPN is bridged to the HTTP/2 owner).
template <bool kTls>
class Session : public std::enable_shared_from_this<Session<kTls>> {
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;
  using std::enable_shared_from_this<Session<kTls>>::shared_from_this;

 public:
  Session(tcp::socket socket, std::shared_ptr<Listener> listener)
    requires(!kTls)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), listener_(std::move(listener)),
        post_to_loop_(PostTo(stream_.get_executor())) {
    listener_->connections.fetch_add(1);
  }
  // `context` is kept for the connection's life: a reload replaces the listener's, not ours.
  Session(tcp::socket socket, std::shared_ptr<asio::ssl::context> context, std::shared_ptr<Listener> listener)
    requires(kTls)
      : context_(std::move(context)), stream_(std::move(socket), *context_), timer_(stream_.get_executor()),
        listener_(std::move(listener)), post_to_loop_(PostTo(stream_.get_executor())) {
    listener_->connections.fetch_add(1);
  }
  ~Session() {
    Release();
    // A large body dropped unread to its end (a stalled or refused upload) may lie in a malloc
    // arena, where freeing it keeps it resident (glibc raises its mmap threshold after freeing
    // one large block): a trim gives it back, once for the bodies freed within 200 ms.
    if (parser_ && parser_->get().body().capacity() >= (1u << 20) && !listener_->trim_pending.exchange(true)) {
      auto timer = std::make_shared<asio::steady_timer>(timer_.get_executor(), std::chrono::milliseconds(200));
      timer->async_wait([timer, listener = listener_](beast::error_code ec) {
        listener->trim_pending = false;
        if (!ec) malloc_trim(0);
      });
    }
    listener_->connections.fetch_sub(1);
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if constexpr (kTls) self->DetectTls();
      else self->Read();
    });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // The first bytes tell a TLS client from a plaintext one; the latter is answered 400 in
  // plaintext (as Go's servers do) instead of a handshake error it could not read.
  void DetectTls() {
    Lowest().expires_after(listener_->options.header_timeout);
    beast::async_detect_ssl(Lowest(), buffer_, [self = shared_from_this()](beast::error_code ec, bool is_tls) {
      if (ec) return self->Abort();
      if (!is_tls) {
        self->listener_->handshakes_failed.fetch_add(1);
        static const std::string kPlaintext =
            "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            "Client sent an HTTP request to an HTTPS server.\n";
        asio::async_write(self->Lowest(), asio::buffer(kPlaintext), [self](beast::error_code, size_t) {
          beast::error_code ignored;
          self->Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
        return;
      }
      self->stream_.async_handshake(asio::ssl::stream_base::server, self->buffer_.data(),
                                    [self](beast::error_code handshake_ec, size_t used) {
                                      self->buffer_.consume(used);
                                      self->OnHandshake(handshake_ec);
                                    });
    });
  }

  void OnHandshake(beast::error_code ec) {
    Lowest().expires_never();
    if (ec) {
      // A wrong or missing client certificate, a version or cipher mismatch, a scanner.
      listener_->handshakes_failed.fetch_add(1);
      beast::error_code ignored;
      auto peer = Lowest().socket().remote_endpoint(ignored);
      spdlog::debug("http: TLS handshake from {}:{} failed: {}", peer.address().to_string(), peer.port(), ec.message());
      return Abort();
    }
    if constexpr (kTls) {
      if (listener_->options.http2_handoff && NegotiatedAlpn(stream_.native_handle()) == "h2") return Bridge();
    }
    Read();
  }

  void Abort() {
    beast::error_code ignored;
    Lowest().socket().close(ignored);
  }

  // HTTP/2 over TLS goes to the same owner as plaintext HTTP/2 (which takes plaintext file
  // descriptors): TLS ends here and the bytes are copied both ways through a socket pair.
  void Bridge() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      spdlog::warn("http: cannot bridge an HTTP/2 TLS connection: socketpair: {}", std::strerror(errno));
      return Abort();
    }
    bridge_ = std::make_unique<BridgeState>(stream_.get_executor(), pair[0]);
    listener_->options.http2_handoff(pair[1]);
    PumpTlsToLocal();
    PumpLocalToTls();
  }

  void PumpTlsToLocal() {
    stream_.async_read_some(asio::buffer(bridge_->from_client), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) {
        beast::error_code ignored;
        self->bridge_->local.shutdown(asio::local::stream_protocol::socket::shutdown_send, ignored);
        return;
      }
      asio::async_write(self->bridge_->local, asio::buffer(self->bridge_->from_client.data(), n),
                        [self](beast::error_code write_ec, size_t) {
                          if (write_ec) return self->Abort();
                          self->PumpTlsToLocal();
                        });
    });
  }

  void PumpLocalToTls() {
    bridge_->local.async_read_some(asio::buffer(bridge_->to_client), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->Abort();  // the HTTP/2 owner closed the connection
      asio::async_write(self->stream_, asio::buffer(self->bridge_->to_client.data(), n),
                        [self](beast::error_code write_ec, size_t) {
                          if (write_ec) {
                            beast::error_code ignored;
                            self->bridge_->local.close(ignored);
                            return;
                          }
                          self->PumpLocalToTls();
                        });
    });
  }

  // What the connection waits for, each with its deadline. One timer serves them all, lazily:
  // setting a deadline is a store (per read and write of every request), and the timer wakes
  // at most once per deadline to compare it with the clock, re-waiting when it was moved on.
  // (An Asio timer armed and cancelled for every read and write cost timer-queue work and a
  // handler run each time, several times a request.) The timer holds the session weakly: it
  // never keeps a closed one alive.
  enum class Waiting { kNothing, kRequest, kWrite };
  void Arm(Waiting what, std::chrono::steady_clock::duration timeout) {
    waiting_ = what;
    timed_out_ = false;
    deadline_ = std::chrono::steady_clock::now() + timeout;
    if (!timer_pending_ || deadline_ < timer_expiry_) WaitForDeadline();
  }
  void Disarm() { waiting_ = Waiting::kNothing; }

  void WaitForDeadline() {
    timer_pending_ = true;
    timer_expiry_ = deadline_;
    timer_.expires_at(deadline_);  // cancels a later wait in progress, whose handler then returns
    timer_.async_wait([weak = this->weak_from_this(), expiry = deadline_](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->timer_expiry_ != expiry) return;  // replaced by an earlier deadline
      self->timer_pending_ = false;
      if (self->waiting_ == Waiting::kNothing) return;
      if (std::chrono::steady_clock::now() < self->deadline_) return self->WaitForDeadline();
      beast::error_code ignored;
      if (self->waiting_ == Waiting::kWrite) {
        self->Lowest().socket().close(ignored);  // a client that does not read its answer
        return;
      }
      self->timed_out_ = true;  // the read in progress fails and is answered 408
      self->Lowest().socket().cancel(ignored);
    });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(listener_->options.body_limit);
    parser_->header_limit(64 * 1024);
    Arm(Waiting::kRequest, listener_->options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // True when the read is over and the connection is answered or closed.
  bool Failed(beast::error_code ec, bool body_started) {
    Disarm();
    if (timed_out_) {
      // Nothing at all of a next request on a kept-alive connection: just an idle close.
      if (!body_started && buffer_.size() == 0 && !parser_->got_some()) {
        Close();
        return true;
      }
      keep_alive_ = false;
      Write(HttpResponse::Text(408, body_started ? "request body not received in time\n" : "request headers not received in time\n"));
      return true;
    }
    if (!ec) return false;
    if (ec == http::error::end_of_stream || ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      Close();
      return true;
    }
    if (ec == http::error::body_limit) {
      // Answer at once, then read and drop what the client still sends: closing with unread
      // data would reset the connection and the client would never see the 413.
      keep_alive_ = false;
      draining_ = true;
      Write(HttpResponse::Text(413, "request body exceeds the limit of " + std::to_string(listener_->options.body_limit) +
                                        " bytes\n"));
      return true;
    }
    keep_alive_ = false;
    Write(HttpResponse::Text(400, std::string("malformed HTTP request: ") + ec.message() + "\n"));
    return true;
  }

  void OnHeader(beast::error_code ec) {
    if (Failed(ec, false)) return;
    // Charge the body before reading it: its announced length, or the limit when unknown.
    auto length = parser_->content_length();
    uint64_t charge = length ? std::min<uint64_t>(*length, listener_->options.body_limit) : listener_->options.body_limit;
    if (listener_->receiving_bytes.fetch_add(charge) + charge > listener_->options.receiving_budget) {
      listener_->receiving_bytes.fetch_sub(charge);
      keep_alive_ = false;
      draining_ = true;
      HttpResponse busy = HttpResponse::Text(429, "too many request bytes being received; retry later\n");
      busy.headers.emplace_back("Retry-After", "1");
      Write(std::move(busy));
      return;
    }
    charged_ = charge;
    // A small request's body usually came with its header: parsed here, without another read.
    beast::error_code parse_ec;
    if (ParseBufferedBody(parse_ec) || parse_ec) return OnBody(parse_ec);
    auto expect = parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  // Feeds the parser what the buffer holds of the body; true once the request is complete.
  bool ParseBufferedBody(beast::error_code& ec) {
    while (!parser_->is_done() && buffer_.size() > 0) {
      size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) ec = {};
      if (ec || used == 0) break;
    }
    return !ec && parser_->is_done();
  }

  void ReadBody() {
    Arm(Waiting::kRequest, listener_->options.body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (Failed(ec, true)) return;
    HttpRequest request = parser_->release();
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    // An answer given on the connection's strand (at once, by the handler) is written there
    // and then; from another thread it is posted to the strand.
    Responder respond = [self = shared_from_this()](HttpResponse response) {
      asio::dispatch(self->stream_.get_executor(),
                     [self, response = std::move(response)]() mutable { self->Write(std::move(response)); });
    };
    try {
      // Work the handler defers (the WAL's round) runs after the other requests ready now.
      EndOfTurnScope turn(post_to_loop_);
      listener_->handler(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      spdlog::error("http: handler failed: {}", e.what());
      Write(HttpResponse::Text(500, "internal error\n"));
    }
  }

  void Release() {
    if (charged_ > 0) listener_->receiving_bytes.fetch_sub(charged_);
    charged_ = 0;
  }

  // The head is formatted into a buffer the connection keeps, and head and body go out in one
  // gather write (Beast's response serializer, on a message allocated per answer, was a
  // visible share of a small request's cost).
  void Write(HttpResponse response) {
    if (writing_) {
      spdlog::error("http: a second answer to one request was dropped (status {})", response.status);
      return;
    }
    Release();
    writing_ = true;
    head_.clear();
    AppendResponseHead(response, version_ ? version_ : 11, keep_alive_, head_);
    body_ = std::move(response.body);
    Arm(Waiting::kWrite, std::chrono::seconds(30));  // a client that does not read its answer
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(stream_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->Disarm();
      if (!ec && self->draining_) {
        // Over TLS the close comes after the drain: a close_notify then more reading would
        // stall in OpenSSL's shutdown.
        if constexpr (!kTls) self->Close();
        self->Drain(0);
        return;
      }
      if (ec || !self->keep_alive_) {
        self->Close();
        return;
      }
      self->Read();
    });
  }

  // Reads and discards the rest of a refused body, up to a bound in bytes and time.
  void Drain(uint64_t drained) {
    constexpr uint64_t kMaxDrainBytes = 256ull << 20;
    if (drained > kMaxDrainBytes) return;
    Lowest().expires_after(std::chrono::seconds(10));
    stream_.async_read_some(asio::buffer(drain_buffer_), [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
      if (!ec) self->Drain(drained + n);
    });
  }

  void Close() {
    if constexpr (kTls) {
      // close_notify, then the TCP close; a client that does not answer it gets 2 seconds.
      Lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        beast::error_code ignored;
        self->Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  struct BridgeState {
    BridgeState(const asio::any_io_executor& executor, int fd) : local(executor, asio::local::stream_protocol(), fd) {}
    asio::local::stream_protocol::socket local;
    std::array<char, 16 * 1024> from_client, to_client;
  };

  std::shared_ptr<asio::ssl::context> context_;  // before stream_, which uses it
  Stream stream_;
  asio::steady_timer timer_;
  Waiting waiting_ = Waiting::kNothing;
  std::chrono::steady_clock::time_point deadline_, timer_expiry_;
  bool timer_pending_ = false;
  std::shared_ptr<Listener> listener_;
  const EndOfTurnScope::Post post_to_loop_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t charged_ = 0;
  bool timed_out_ = false;
  bool keep_alive_ = true;
  bool draining_ = false;
  bool writing_ = false;
  std::string head_, body_;  // of the answer being written
  std::array<char, 64 * 1024> drain_buffer_;
  unsigned version_ = 11;
  std::unique_ptr<BridgeState> bridge_;
};

// Waits for a new connection's first bytes without taking them (MSG_PEEK), then gives the
// connection to the HTTP/2 owner or to an HTTP/1.1 Session. A client that sends part of the
// preface is looked at again every few milliseconds; one silent for header_timeout is closed.
class PrefaceSniffer : public std::enable_shared_from_this<PrefaceSniffer> {
 public:
  PrefaceSniffer(tcp::socket socket, std::shared_ptr<Listener> listener)
      : socket_(std::move(socket)), deadline_(socket_.get_executor()), retry_(socket_.get_executor()),
        listener_(std::move(listener)) {
    listener_->connections.fetch_add(1);
  }
  ~PrefaceSniffer() { listener_->connections.fetch_sub(1); }

  void Start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->deadline_.expires_after(self->listener_->options.header_timeout);
      self->deadline_.async_wait([self](beast::error_code ec) {
        if (ec || self->decided_) return;
        self->decided_ = true;  // silent or stuck in the preface: close
        beast::error_code ignored;
        self->retry_.cancel();
        self->socket_.close(ignored);
      });
      self->WaitReadable();
    });
  }

 private:
  void WaitReadable() {
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) { self->Peek(ec); });
  }

  void Peek(beast::error_code ec) {
    if (decided_) return;
    if (ec) return Finish();  // closed under us
    char first[kHttp2Preface.size()];
    ssize_t n = ::recv(socket_.native_handle(), first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return WaitReadable();
    if (n <= 0) return Finish();  // the client closed (or the socket failed) before a byte
    switch (MatchHttp2Preface(std::string_view(first, size_t(n)))) {
      case PrefaceMatch::kNotHttp2: {
        Finish();
        std::make_shared<Session<false>>(std::move(socket_), listener_)->Start();
        return;
      }
      case PrefaceMatch::kHttp2: {
        Finish();
        beast::error_code release_ec;
        int fd = socket_.release(release_ec);
        if (release_ec) return;
        // The new owner expects a non-blocking socket, whatever Asio left it as.
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        listener_->HandOff(fd);
        return;
      }
      case PrefaceMatch::kUndecided:
        // Readiness would fire again at once for the bytes already there: poll instead.
        retry_.expires_after(std::chrono::milliseconds(5));
        retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
          if (!wait_ec) self->Peek({});
        });
        return;
    }
  }

  void Finish() {
    decided_ = true;
    deadline_.cancel();
  }

  tcp::socket socket_;
  asio::steady_timer deadline_, retry_;
  std::shared_ptr<Listener> listener_;
  bool decided_ = false;
};

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions options, HttpHandler h) : listener(std::make_shared<Listener>(options, std::move(h))) {}
  void Accept(tcp::socket socket) {
    size_t open = listener->connections.load() + (listener->options.http2_handoff ? listener->OpenHandedOff() : 0);
    if (open >= listener->options.max_connections) {
      listener->refused.fetch_add(1);
      beast::error_code ignored;
      socket.close(ignored);
    } else if (listener->options.tls) {
      // TLS: HTTP/2 is chosen by ALPN in the handshake, not by a preface.
      std::make_shared<Session<true>>(std::move(socket), listener->options.tls->Current(), listener)->Start();
    } else if (listener->options.http2_handoff) {
      std::make_shared<PrefaceSniffer>(std::move(socket), listener)->Start();
    } else {
      std::make_shared<Session<false>>(std::move(socket), listener)->Start();
    }
  }
  std::unique_ptr<TcpAcceptor> acceptor;
  std::shared_ptr<Listener> listener;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Bind(asio::io_context& io, const std::string& address, uint16_t port,
                                                     HttpServerOptions options, HttpHandler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  auto acceptor = TcpAcceptor::Bind(io, address, port, impl->listener->options.connection_contexts, "http");
  if (!acceptor.ok()) return acceptor.status();
  impl->acceptor = std::move(acceptor).value();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Start() {
  impl_->acceptor->Start([impl = impl_.get()](tcp::socket socket) { impl->Accept(std::move(socket)); });
}

void HttpServer::Stop() {
  if (impl_) impl_->acceptor->Close();
}

uint64_t HttpServer::connections_refused() const { return impl_->listener->refused.load(); }

uint64_t HttpServer::tls_handshakes_failed() const { return impl_->listener->handshakes_failed.load(); }

uint16_t HttpServer::port() const { return impl_->acceptor->port(); }

}  // namespace tracery
