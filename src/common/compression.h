// gzip/deflate decompression with a hard output limit, so a small "zip bomb" cannot make the
// server allocate more than a request may be.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tracery {

enum class CompressedFormat { kGzip, kZlib };

// Decompresses a body: TooLarge past `max_output` bytes, InvalidArgument when it is not valid
// in its format. gzip bodies of several members are read whole; anything after the last
// member (or after a zlib stream) is refused.
Result<std::string> InflateLimited(std::string_view compressed, size_t max_output, CompressedFormat format);
Result<std::string> GunzipLimited(std::string_view compressed, size_t max_output);

}  // namespace tracery
