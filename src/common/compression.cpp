#include "common/compression.h"

#include <zlib.h>

namespace tracery {

Result<std::string> InflateLimited(std::string_view compressed, size_t max_output, CompressedFormat format) {
  // gzip (RFC 1952) may hold several members, read one after the other as one body; nothing
  // may follow the last. zlib ("deflate" in HTTP) is one stream.
  const int window_bits = format == CompressedFormat::kGzip ? 15 + 16 : 15;
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) return Status::Internal("zlib init failed");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  out.resize(std::min<size_t>(max_output + 1, std::max<size_t>(compressed.size() * 4, 64 * 1024)));
  size_t total = 0;
  const char* what = format == CompressedFormat::kGzip ? "gzip" : "deflate (zlib)";
  auto fail = [&](const std::string& why) {
    inflateEnd(&stream);
    return Status::InvalidArgument("body is not valid " + std::string(what) + ": " + why);
  };
  for (;;) {
    if (total >= out.size()) {
      if (out.size() > max_output) break;
      out.resize(std::min<size_t>(max_output + 1, out.size() * 2));
    }
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + total);
    stream.avail_out = static_cast<uInt>(out.size() - total);
    size_t before = stream.avail_out;
    int rc = inflate(&stream, Z_NO_FLUSH);
    total += before - stream.avail_out;
    if (rc == Z_STREAM_END) {
      if (stream.avail_in == 0) break;
      if (format != CompressedFormat::kGzip) return fail("data after the end of the stream");
      // Another member must start right here (magic 1f 8b).
      if (stream.avail_in < 2 || stream.next_in[0] != 0x1f || stream.next_in[1] != 0x8b)
        return fail("data after the last member");
      if (inflateReset(&stream) != Z_OK) return fail("cannot read the next member");
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(stream.msg ? stream.msg : "corrupt data");
    if (stream.avail_in == 0 && stream.avail_out != 0) return fail("truncated");
  }
  inflateEnd(&stream);
  if (total > max_output) return Status::TooLarge("decompressed request exceeds the limit of " + std::to_string(max_output) + " bytes");
  out.resize(total);
  return out;
}

Result<std::string> GunzipLimited(std::string_view compressed, size_t max_output) {
  return InflateLimited(compressed, max_output, CompressedFormat::kGzip);
}

}  // namespace tracery
