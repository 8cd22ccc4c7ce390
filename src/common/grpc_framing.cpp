#include "common/grpc_framing.h"

#include <snappy.h>
#include <zstd.h>

#include <memory>

#include "common/compression.h"
#include "common/crc32c.h"

namespace tracery {

namespace {

constexpr size_t kPrefixBytes = 5;

uint32_t BigEndian32(std::string_view bytes) {
  auto byte = [&](size_t i) { return uint32_t(uint8_t(bytes[i])); };
  return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}

uint32_t LittleEndian24(std::string_view bytes) {
  auto byte = [&](size_t i) { return uint32_t(uint8_t(bytes[i])); };
  return byte(0) | byte(1) << 8 | byte(2) << 16;
}

Status TooLargeMessage(uint64_t size, uint64_t limit) {
  return Status::TooLarge("gRPC message of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(limit) +
                          " bytes");
}

Result<std::string> ZstdLimited(std::string_view compressed, size_t max_output) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!context) return Status::Internal("zstd: cannot create a decompression context");
  std::string out;
  out.resize(std::min<size_t>(max_output + 1, std::max<size_t>(compressed.size() * 4, 64 * 1024)));
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  size_t total = 0, frame_rest = 1;
  // Several frames may follow each other; the message ends at the end of one.
  while (in.pos < in.size || frame_rest != 0) {
    if (total == out.size()) {
      if (out.size() > max_output) return Status::TooLarge("decompressed message exceeds the limit of " + std::to_string(max_output) + " bytes");
      out.resize(std::min<size_t>(max_output + 1, out.size() * 2));
    }
    ZSTD_outBuffer output{out.data() + total, out.size() - total, 0};
    size_t in_before = in.pos;
    frame_rest = ZSTD_decompressStream(context.get(), &output, &in);
    if (ZSTD_isError(frame_rest)) return Status::InvalidArgument(std::string("message is not valid zstd: ") + ZSTD_getErrorName(frame_rest));
    total += output.pos;
    if (in.pos == in.size && frame_rest != 0 && output.pos == 0 && in.pos == in_before)
      return Status::InvalidArgument("message is not valid zstd: truncated");
  }
  if (total > max_output) return Status::TooLarge("decompressed message exceeds the limit of " + std::to_string(max_output) + " bytes");
  out.resize(total);
  return out;
}

Result<std::string> SnappyRawLimited(std::string_view compressed, size_t max_output) {
  size_t length = 0;
  if (!snappy::GetUncompressedLength(compressed.data(), compressed.size(), &length))
    return Status::InvalidArgument("message is not valid snappy");
  if (length > max_output) return Status::TooLarge("decompressed message exceeds the limit of " + std::to_string(max_output) + " bytes");
  std::string out;
  if (!snappy::Uncompress(compressed.data(), compressed.size(), &out)) return Status::InvalidArgument("message is not valid snappy");
  return out;
}

// Snappy's framing format: chunks of a type byte and a 3-byte little-endian length; data
// chunks carry a masked CRC32C of their uncompressed bytes.
Result<std::string> SnappyFramedLimited(std::string_view stream, size_t max_output) {
  auto invalid = [](const std::string& why) { return Status::InvalidArgument("message is not valid framed snappy: " + why); };
  std::string out;
  while (!stream.empty()) {
    if (stream.size() < 4) return invalid("truncated chunk header");
    uint8_t type = uint8_t(stream[0]);
    uint32_t length = LittleEndian24(stream.substr(1));
    if (stream.size() - 4 < length) return invalid("truncated chunk");
    std::string_view chunk = stream.substr(4, length);
    stream.remove_prefix(4 + length);
    if (type == 0xff) {
      if (chunk != "sNaPpY") return invalid("bad stream identifier");
      continue;
    }
    if (type >= 0x80) continue;  // padding and skippable chunks
    if (type > 1) return invalid("reserved chunk type " + std::to_string(type));
    if (chunk.size() < 4) return invalid("chunk without a checksum");
    uint32_t expected = uint32_t(uint8_t(chunk[0])) | uint32_t(uint8_t(chunk[1])) << 8 | uint32_t(uint8_t(chunk[2])) << 16 |
                        uint32_t(uint8_t(chunk[3])) << 24;
    chunk.remove_prefix(4);
    size_t start = out.size();
    if (type == 1) {
      if (out.size() + chunk.size() > max_output) return Status::TooLarge("decompressed message exceeds the limit of " + std::to_string(max_output) + " bytes");
      out.append(chunk);
    } else {
      size_t length_out = 0;
      if (!snappy::GetUncompressedLength(chunk.data(), chunk.size(), &length_out)) return invalid("bad chunk");
      if (out.size() + length_out > max_output) return Status::TooLarge("decompressed message exceeds the limit of " + std::to_string(max_output) + " bytes");
      out.resize(start + length_out);
      if (!snappy::RawUncompress(chunk.data(), chunk.size(), out.data() + start)) return invalid("bad chunk");
    }
    uint32_t crc = Crc32c(out.data() + start, out.size() - start);
    if (((crc >> 15) | (crc << 17)) + 0xa282ead8u != expected) return invalid("checksum mismatch");
  }
  return out;
}

}  // namespace

Status CheckUnaryGrpcBody(std::string_view body, bool complete, uint64_t max_message_bytes, GrpcMessageView* message) {
  if (body.empty())
    return complete ? Status::InvalidArgument("the request stream ended without a gRPC message") : Status::Ok();
  uint8_t flag = uint8_t(body[0]);
  if (flag > 1) return Status::InvalidArgument("gRPC message compressed flag is " + std::to_string(flag) + ", not 0 or 1");
  if (body.size() < kPrefixBytes) {
    if (!complete) return Status::Ok();
    return Status::InvalidArgument("truncated gRPC message header: " + std::to_string(body.size()) + " of 5 bytes");
  }
  uint64_t length = BigEndian32(body.substr(1));
  if (length > max_message_bytes) return TooLargeMessage(length, max_message_bytes);
  uint64_t arrived = body.size() - kPrefixBytes;
  if (arrived > length)
    return Status::InvalidArgument("more than one gRPC message on a unary call (" + std::to_string(arrived - length) +
                                   " bytes after the first message)");
  if (arrived < length) {
    if (!complete) return Status::Ok();
    return Status::InvalidArgument("truncated gRPC message: its header announces " + std::to_string(length) + " bytes, " +
                                   std::to_string(arrived) + " arrived before the end of the stream");
  }
  if (complete && message) *message = GrpcMessageView{flag == 1, body.substr(kPrefixBytes)};
  return Status::Ok();
}

bool ParseGrpcTimeout(std::string_view text, std::chrono::nanoseconds& timeout) {
  if (text.size() < 2 || text.size() > 9) return false;
  uint64_t value = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + uint64_t(c - '0');
  }
  using namespace std::chrono;
  switch (text.back()) {
    case 'H': timeout = hours(std::min<uint64_t>(value, 24 * 365 * 100)); return true;  // 8 digits of hours overflow
    case 'M': timeout = minutes(value); return true;
    case 'S': timeout = seconds(value); return true;
    case 'm': timeout = milliseconds(value); return true;
    case 'u': timeout = microseconds(value); return true;
    case 'n': timeout = nanoseconds(value); return true;
    default: return false;
  }
}

GrpcEncoding ParseGrpcEncoding(std::string_view name) {
  if (name == "identity") return GrpcEncoding::kIdentity;
  if (name == "gzip") return GrpcEncoding::kGzip;
  if (name == "deflate") return GrpcEncoding::kDeflate;
  if (name == "zstd") return GrpcEncoding::kZstd;
  if (name == "snappy") return GrpcEncoding::kSnappy;
  return GrpcEncoding::kUnknown;
}

Result<std::string> DecompressGrpcMessage(std::string_view compressed, GrpcEncoding encoding, size_t max_output) {
  switch (encoding) {
    case GrpcEncoding::kIdentity:
      if (compressed.size() > max_output) return TooLargeMessage(compressed.size(), max_output);
      return std::string(compressed);
    case GrpcEncoding::kGzip: return InflateLimited(compressed, max_output, CompressedFormat::kGzip);
    case GrpcEncoding::kDeflate: return InflateLimited(compressed, max_output, CompressedFormat::kZlib);
    case GrpcEncoding::kZstd: return ZstdLimited(compressed, max_output);
    case GrpcEncoding::kSnappy:
      if (compressed.substr(0, 10) == std::string_view("\xff\x06\x00\x00sNaPpY", 10)) return SnappyFramedLimited(compressed, max_output);
      return SnappyRawLimited(compressed, max_output);
    case GrpcEncoding::kUnknown: break;
  }
  return Status::UnsupportedMedia("unknown grpc-encoding");
}

std::string PercentEncodeGrpcMessage(std::string_view message) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string PercentDecodeGrpcMessage(std::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size() && hex(encoded[i + 1]) >= 0 && hex(encoded[i + 2]) >= 0) {
      out += char(hex(encoded[i + 1]) * 16 + hex(encoded[i + 2]));
      i += 2;
    } else {
      out += encoded[i];
    }
  }
  return out;
}

std::string Base64Unpadded(std::string_view bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (bytes.size() - i == 1) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63]};
  } else if (bytes.size() - i == 2) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63]};
  }
  return out;
}

}  // namespace tracery
