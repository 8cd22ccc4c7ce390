#include "common/tcp_acceptor.h"

#include <boost/asio/strand.hpp>

#include <spdlog/spdlog.h>

namespace tracery {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TcpAcceptor::TcpAcceptor(asio::io_context& io, std::vector<asio::io_context*> connection_contexts, std::string name)
    : io_(io),
      connection_contexts_(std::move(connection_contexts)),
      name_(std::move(name)),
      acceptor_(asio::make_strand(io)),
      backoff_(acceptor_.get_executor()) {}

Result<std::unique_ptr<TcpAcceptor>> TcpAcceptor::Bind(asio::io_context& io, const std::string& address, uint16_t port,
                                                       std::vector<asio::io_context*> connection_contexts,
                                                       std::string name) {
  std::unique_ptr<TcpAcceptor> self(new TcpAcceptor(io, std::move(connection_contexts), std::move(name)));
  boost::system::error_code ec;
  // `localhost`, the Collector's default host, is the loopback address (Bind takes addresses).
  auto ip = asio::ip::make_address(address.empty() ? "0.0.0.0" : address == "localhost" ? "127.0.0.1" : address, ec);
  if (ec) return Status::InvalidArgument("bad listen address " + address + ": " + ec.message());
  tcp::endpoint endpoint(ip, port);
  self->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) self->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) self->acceptor_.bind(endpoint, ec);
  if (!ec) self->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message());
  self->port_ = self->acceptor_.local_endpoint(ec).port();
  return self;
}

void TcpAcceptor::Start(OnSocket on_socket) {
  on_socket_ = std::move(on_socket);
  Accept();
}

void TcpAcceptor::Accept() {
  asio::any_io_executor executor = connection_contexts_.empty()
                                       ? asio::any_io_executor(asio::make_strand(io_))
                                       : connection_contexts_[next_context_++ % connection_contexts_.size()]->get_executor();
  acceptor_.async_accept(executor, [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      if (!failing_) spdlog::warn("{}: accept on port {} failed: {}; retrying every 100 ms", name_, port_, ec.message());
      failing_ = true;
      backoff_.expires_after(std::chrono::milliseconds(100));
      backoff_.async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
      return;
    }
    failing_ = false;
    socket.set_option(tcp::no_delay(true), ec);
    on_socket_(std::move(socket));
    Accept();
  });
}

void TcpAcceptor::Close() {
  boost::system::error_code ec;
  if (acceptor_.is_open()) acceptor_.close(ec);
  backoff_.cancel();
}

}  // namespace tracery
