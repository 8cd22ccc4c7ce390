#include "common/compression.h"

#include <zlib.h>

namespace tracery {

Result<std::string> GunzipLimited(std::string_view compressed, size_t max_output) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 32) != Z_OK) return Status::Internal("zlib init failed");  // 32: gzip or zlib header
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  out.resize(std::min<size_t>(max_output + 1, std::max<size_t>(compressed.size() * 4, 64 * 1024)));
  int rc = Z_OK;
  while (true) {
    if (stream.total_out >= out.size()) {
      if (out.size() > max_output) break;
      out.resize(std::min<size_t>(max_output + 1, out.size() * 2));
    }
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + stream.total_out);
    stream.avail_out = static_cast<uInt>(out.size() - stream.total_out);
    rc = inflate(&stream, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      inflateEnd(&stream);
      return Status::InvalidArgument(std::string("body is not valid gzip: ") + (stream.msg ? stream.msg : "truncated"));
    }
    if (stream.avail_in == 0 && stream.avail_out != 0) {
      inflateEnd(&stream);
      return Status::InvalidArgument("body is not valid gzip: truncated");
    }
  }
  size_t total = stream.total_out;
  inflateEnd(&stream);
  if (total > max_output) return Status::TooLarge("decompressed request exceeds the limit of " + std::to_string(max_output) + " bytes");
  out.resize(total);
  return out;
}

}  // namespace tracery
