#include "common/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <charconv>

#include <spdlog/spdlog.h>

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

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, uint64_t body_limit, const HttpHandler& handler)
      : stream_(std::move(socket)), body_limit_(body_limit), handler_(handler) {}

  void Start() { asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); }); }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(120));
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      // Answer at once, then read and drop what the client still sends: closing with unread
      // data would reset the connection and the client would never see the 413.
      keep_alive_ = false;
      draining_ = true;
      Write(HttpResponse::Text(413, "request body exceeds the limit of " + std::to_string(body_limit_) + " bytes\n"));
      return;
    }
    if (ec) {
      keep_alive_ = false;
      Write(HttpResponse::Text(400, std::string("malformed HTTP request: ") + ec.message() + "\n"));
      return;
    }
    HttpRequest request = parser_->release();
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    auto self = shared_from_this();
    Responder respond = [self](HttpResponse response) {
      asio::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable { self->Write(std::move(response)); });
    };
    try {
      handler_(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      spdlog::error("http: handler failed: {}", e.what());
      Write(HttpResponse::Text(500, "internal error\n"));
    }
  }

  void Write(HttpResponse response) {
    auto message = std::make_shared<http::response<http::string_body>>(http::status(response.status), version_ ? version_ : 11);
    message->set(http::field::server, "tracery");
    message->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) message->set(name, value);
    message->body() = std::move(response.body);
    message->keep_alive(keep_alive_);
    message->prepare_payload();
    http::async_write(stream_, *message, [self = shared_from_this(), message](beast::error_code ec, size_t) {
      if (!ec && self->draining_) {
        self->Close();
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
    stream_.expires_after(std::chrono::seconds(10));
    stream_.async_read_some(asio::buffer(drain_buffer_), [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
      if (!ec) self->Drain(drained + n);
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t body_limit_;
  const HttpHandler& handler_;
  bool keep_alive_ = true;
  bool draining_ = false;
  std::array<char, 64 * 1024> drain_buffer_;
  unsigned version_ = 11;
};

}  // namespace

struct HttpServer::Impl {
  Impl(asio::io_context& io, uint64_t limit, HttpHandler h) : io(io), acceptor(asio::make_strand(io)), body_limit(limit), handler(std::move(h)) {}
  void Accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), body_limit, handler)->Start();
      }
      Accept();
    });
  }
  asio::io_context& io;
  tcp::acceptor acceptor;
  uint64_t body_limit;
  HttpHandler handler;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Bind(asio::io_context& io, const std::string& address, uint16_t port,
                                                     uint64_t body_limit, HttpHandler handler) {
  auto impl = std::make_unique<Impl>(io, body_limit, std::move(handler));
  beast::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) return Status::InvalidArgument("bad listen address " + address + ": " + ec.message());
  tcp::endpoint endpoint(ip, port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Start() { impl_->Accept(); }

void HttpServer::Stop() {
  beast::error_code ec;
  if (impl_ && impl_->acceptor.is_open()) impl_->acceptor.close(ec);
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace tracery
