// Compression for tests: the other side of common/compression.h, written with zlib directly
// so that tests do not check tracery's decoder against itself.
#pragma once

#include <zlib.h>

#include <string>
#include <string_view>

#include "common/compression.h"

namespace tracery {

inline std::string CompressForTests(std::string_view data, CompressedFormat format) {
  z_stream stream{};
  deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, format == CompressedFormat::kGzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, uLong(data.size())) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = uInt(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = uInt(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace tracery
