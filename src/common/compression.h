// gzip/deflate decompression with a hard output limit, so a small "zip bomb" cannot make the
// server allocate more than a request may be.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tracery {

// Decompresses gzip (or zlib) data; TooLarge past `max_output` bytes, InvalidArgument when
// the data is not valid gzip.
Result<std::string> GunzipLimited(std::string_view compressed, size_t max_output);

}  // namespace tracery
