// CRC32C (Castagnoli), the checksum of WAL records and block sections. Uses the SSE4.2
// instruction when the CPU has it, a table otherwise; both give the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tracery {

uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t Crc32c(std::string_view data) { return Crc32c(data.data(), data.size()); }

}  // namespace tracery
