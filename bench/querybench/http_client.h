// A minimal blocking HTTP/1.1 client over one keep-alive TCP connection: enough to time
// GET requests against a local server without a library's own overheads in the figures.
// Understands Content-Length, chunked bodies and close-delimited bodies; no TLS, no
// redirects. One instance per thread.
#pragma once

#include <string>
#include <vector>

namespace tracery::bench {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// "http://127.0.0.1:3200" -> host, port, path prefix ("" here). False if not plain http.
bool ParseHttpUrl(const std::string& url, std::string& host, int& port, std::string& prefix);

class HttpConnection {
 public:
  HttpConnection(std::string host, int port, std::vector<std::string> extra_headers);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends GET `path` and reads the whole response. Reconnects once if the server had closed
  // the idle connection. On failure returns false and says why in `error`.
  bool Get(const std::string& path, HttpResponse& response, std::string& error);

 private:
  bool Connect(std::string& error);
  void Close();
  bool SendAll(const std::string& data, std::string& error);
  bool ReadResponse(HttpResponse& response, bool& server_closed, std::string& error);
  bool ReadHeaders(size_t& header_end, std::string& error);
  bool ReadChunkedBody(size_t body_start, std::string& body, std::string& error);
  bool FillBuffer(std::string& error);  // reads more bytes; false at EOF or error

  std::string host_;
  int port_;
  std::vector<std::string> extra_headers_;
  int socket_ = -1;
  std::string buffer_;  // bytes received and not yet consumed
  bool at_eof_ = false;
};

}  // namespace tracery::bench
