// The listening socket of tracery's servers (HttpServer, GrpcH2Server): binds, hands each
// accepted connection to the server on the event loop it will live on (the next of the
// server's single-thread contexts in turn, or a strand of the io_context), and rides out
// accept errors, such as file descriptors running out, by retrying every 100 ms instead of
// spinning, while the connections already open keep being served.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace tracery {

class TcpAcceptor {
 public:
  // Takes a connection (TCP_NODELAY set), bound to its event loop; runs on the acceptor's strand.
  using OnSocket = std::function<void(boost::asio::ip::tcp::socket)>;

  // Listens on `address` ("" is every interface, as in Tempo; `localhost` is 127.0.0.1) and
  // `port` (0: any free port).
  // Connections are spread over `connection_contexts`, or put on strands of `io` when there are
  // none. `name` names the server in logs ("http", "grpc").
  static Result<std::unique_ptr<TcpAcceptor>> Bind(boost::asio::io_context& io, const std::string& address, uint16_t port,
                                                   std::vector<boost::asio::io_context*> connection_contexts,
                                                   std::string name);

  // Accepts until Close. The acceptor must outlive the io_context's run.
  void Start(OnSocket on_socket);
  // Stops accepting (and a retry waiting); connections already handed over are the owner's.
  void Close();
  uint16_t port() const { return port_; }

 private:
  TcpAcceptor(boost::asio::io_context& io, std::vector<boost::asio::io_context*> connection_contexts, std::string name);
  void Accept();

  boost::asio::io_context& io_;
  const std::vector<boost::asio::io_context*> connection_contexts_;
  const std::string name_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  OnSocket on_socket_;
  size_t next_context_ = 0;
  bool failing_ = false;
  uint16_t port_ = 0;
};

}  // namespace tracery
