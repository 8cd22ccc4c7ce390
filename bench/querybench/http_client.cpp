#include "querybench/http_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace tracery::bench {
namespace {

constexpr int kReceiveTimeoutSeconds = 60;

std::string Lowercase(std::string_view text) {
  std::string lowered(text);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lowered;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

bool ParseHttpUrl(const std::string& url, std::string& host, int& port, std::string& prefix) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return false;
  const std::string_view rest = std::string_view(url).substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  const size_t colon = authority.rfind(':');
  host = std::string(authority.substr(0, colon));
  port = 80;
  if (colon != std::string_view::npos) {
    port = std::atoi(std::string(authority.substr(colon + 1)).c_str());
  }
  return !host.empty() && port > 0 && port < 65536;
}

HttpConnection::HttpConnection(std::string host, int port, std::vector<std::string> extra_headers)
    : host_(std::move(host)), port_(port), extra_headers_(std::move(extra_headers)) {}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (socket_ >= 0) ::close(socket_);
  socket_ = -1;
  buffer_.clear();
  at_eof_ = false;
}

bool HttpConnection::Connect(std::string& error) {
  Close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  const int resolved = getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &addresses);
  if (resolved != 0) {
    error = "resolve " + host_ + ": " + gai_strerror(resolved);
    return false;
  }
  for (addrinfo* address = addresses; address != nullptr; address = address->ai_next) {
    const int candidate = ::socket(address->ai_family, address->ai_socktype, address->ai_protocol);
    if (candidate < 0) continue;
    if (::connect(candidate, address->ai_addr, address->ai_addrlen) == 0) {
      socket_ = candidate;
      break;
    }
    ::close(candidate);
  }
  freeaddrinfo(addresses);
  if (socket_ < 0) {
    error = "connect " + host_ + ":" + std::to_string(port_) + ": " + std::strerror(errno);
    return false;
  }
  // Requests are small and latency is what is measured: never wait for Nagle.
  const int enable = 1;
  setsockopt(socket_, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof enable);
  timeval timeout{kReceiveTimeoutSeconds, 0};
  setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return true;
}

bool HttpConnection::Get(const std::string& path, HttpResponse& response, std::string& error) {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_ + ":" +
                        std::to_string(port_) + "\r\nUser-Agent: tracery-querybench\r\n";
  for (const std::string& header : extra_headers_) request += header + "\r\n";
  request += "\r\n";

  // A keep-alive connection the server closed while idle fails on first use; one retry
  // on a fresh connection tells that apart from a real failure.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = socket_ >= 0;
    if (!reused && !Connect(error)) return false;
    bool server_closed = false;
    if (SendAll(request, error) && ReadResponse(response, server_closed, error)) {
      if (server_closed) Close();
      return true;
    }
    Close();
    if (!reused) return false;
  }
  return false;
}

bool HttpConnection::SendAll(const std::string& data, std::string& error) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t written = ::send(socket_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      error = std::string("send: ") + std::strerror(errno);
      return false;
    }
    sent += static_cast<size_t>(written);
  }
  return true;
}

bool HttpConnection::FillBuffer(std::string& error) {
  if (at_eof_) return false;
  char chunk[64 * 1024];
  for (;;) {
    const ssize_t received = ::recv(socket_, chunk, sizeof chunk, 0);
    if (received < 0 && errno == EINTR) continue;
    if (received < 0) {
      error = std::string("recv: ") + std::strerror(errno);
      return false;
    }
    if (received == 0) {
      at_eof_ = true;
      error = "connection closed by server";
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(received));
    return true;
  }
}

bool HttpConnection::ReadHeaders(size_t& header_end, std::string& error) {
  for (;;) {
    const size_t found = buffer_.find("\r\n\r\n");
    if (found != std::string::npos) {
      header_end = found + 4;
      return true;
    }
    if (!FillBuffer(error)) return false;
  }
}

bool HttpConnection::ReadResponse(HttpResponse& response, bool& server_closed,
                                  std::string& error) {
  size_t header_end = 0;
  if (!ReadHeaders(header_end, error)) return false;
  const std::string_view head(buffer_.data(), header_end);
  // Status line: "HTTP/1.1 200 OK".
  const size_t first_space = head.find(' ');
  if (head.rfind("HTTP/1.", 0) != 0 || first_space == std::string_view::npos) {
    error = "not an HTTP/1.x response: " + std::string(head.substr(0, 40));
    return false;
  }
  response.status = std::atoi(std::string(head.substr(first_space + 1, 3)).c_str());
  long long content_length = -1;
  bool chunked = false;
  server_closed = false;
  size_t line_start = head.find("\r\n") + 2;
  while (line_start < header_end - 2) {
    const size_t line_end = head.find("\r\n", line_start);
    const std::string_view line = head.substr(line_start, line_end - line_start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string name = Lowercase(Trim(line.substr(0, colon)));
      const std::string value = Lowercase(Trim(line.substr(colon + 1)));
      if (name == "content-length") content_length = std::atoll(value.c_str());
      if (name == "transfer-encoding" && value.find("chunked") != std::string::npos) chunked = true;
      if (name == "connection" && value == "close") server_closed = true;
    }
    line_start = line_end + 2;
  }

  response.body.clear();
  if (chunked) return ReadChunkedBody(header_end, response.body, error);
  if (response.status == 204 || response.status == 304) content_length = 0;
  if (content_length >= 0) {
    const size_t needed = header_end + static_cast<size_t>(content_length);
    while (buffer_.size() < needed) {
      if (!FillBuffer(error)) return false;
    }
    response.body.assign(buffer_, header_end, static_cast<size_t>(content_length));
    buffer_.erase(0, needed);
    return true;
  }
  // No length and not chunked: the body runs until the server closes the connection.
  std::string ignored;
  while (FillBuffer(ignored)) {
  }
  response.body.assign(buffer_, header_end);
  server_closed = true;
  buffer_.clear();
  return true;
}

bool HttpConnection::ReadChunkedBody(size_t body_start, std::string& body, std::string& error) {
  size_t position = body_start;
  for (;;) {
    size_t line_end;
    while ((line_end = buffer_.find("\r\n", position)) == std::string::npos) {
      if (!FillBuffer(error)) return false;
    }
    const std::string size_text = buffer_.substr(position, line_end - position);
    const size_t chunk_size = std::strtoull(size_text.c_str(), nullptr, 16);
    position = line_end + 2;
    if (chunk_size == 0) {
      // Optional trailer lines, then an empty line.
      for (;;) {
        while ((line_end = buffer_.find("\r\n", position)) == std::string::npos) {
          if (!FillBuffer(error)) return false;
        }
        const bool empty_line = line_end == position;
        position = line_end + 2;
        if (empty_line) break;
      }
      buffer_.erase(0, position);
      return true;
    }
    while (buffer_.size() < position + chunk_size + 2) {
      if (!FillBuffer(error)) return false;
    }
    body.append(buffer_, position, chunk_size);
    position += chunk_size + 2;
  }
}

}  // namespace tracery::bench
