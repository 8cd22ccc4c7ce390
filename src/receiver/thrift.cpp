#include "receiver/thrift.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace tracery::receiver::thrift {
namespace {

int64_t UnZigZag64(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

bool ValidBinaryType(uint8_t t) {
  switch (t) {
    case 2: case 3: case 4: case 6: case 8: case 10: case 11: case 12: case 13: case 14: case 15: return true;
    default: return false;
  }
}

// The fewest bytes one value of `type` takes on the wire: what lets a container's announced
// size be checked against the input before any element is read.
size_t MinimumSize(Protocol protocol, Type type) {
  if (protocol == Protocol::kCompact) return type == Type::kDouble ? 8 : 1;
  switch (type) {
    case Type::kBool: case Type::kByte: case Type::kStruct: return 1;
    case Type::kI16: return 2;
    case Type::kI32: case Type::kString: return 4;
    case Type::kDouble: case Type::kI64: return 8;
    case Type::kList: case Type::kSet: return 5;
    case Type::kMap: return 6;
    default: return 1;
  }
}

}  // namespace

Reader::Reader(Protocol protocol, std::string_view bytes, int max_depth)
    : protocol_(protocol),
      begin_(bytes.data()),
      position_(bytes.data()),
      end_(bytes.data() + bytes.size()),
      max_depth_(std::clamp(max_depth, 1, kMaxIdStack - 1)) {}

bool Reader::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message) + " at byte " + std::to_string(offset());
  position_ = end_;  // nothing more is read after a failure
  return false;
}

bool Reader::Need(size_t n, const char* what) {
  if (!ok()) return false;
  if (remaining() < n) return Fail(std::string("input ends inside ") + what);
  return true;
}

bool Reader::ReadRawByte(uint8_t& out, const char* what) {
  if (!Need(1, what)) return false;
  out = static_cast<uint8_t>(*position_++);
  return true;
}

bool Reader::ReadVarint(uint64_t& out, const char* what) {
  out = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    uint8_t b;
    if (!ReadRawByte(b, what)) return false;
    if (shift == 63 && b > 1) return Fail(std::string("varint too long in ") + what);
    out |= uint64_t(b & 0x7f) << shift;
    if (b < 0x80) return true;
  }
  return Fail(std::string("varint too long in ") + what);
}

bool Reader::ReadBigEndian(int bytes, uint64_t& out, const char* what) {
  if (!Need(size_t(bytes), what)) return false;
  out = 0;
  for (int i = 0; i < bytes; ++i) out = out << 8 | static_cast<uint8_t>(position_[i]);
  position_ += bytes;
  return true;
}

bool Reader::CompactType(uint8_t nibble, Type& out) {
  switch (nibble) {
    case 1: case 2: out = Type::kBool; return true;
    case 3: out = Type::kByte; return true;
    case 4: out = Type::kI16; return true;
    case 5: out = Type::kI32; return true;
    case 6: out = Type::kI64; return true;
    case 7: out = Type::kDouble; return true;
    case 8: out = Type::kString; return true;
    case 9: out = Type::kList; return true;
    case 10: out = Type::kSet; return true;
    case 11: out = Type::kMap; return true;
    case 12: out = Type::kStruct; return true;
    default: return Fail("unknown compact type " + std::to_string(nibble));
  }
}

bool Reader::Enter() {
  if (!ok()) return false;
  if (depth_ >= max_depth_) return Fail("nesting deeper than " + std::to_string(max_depth_));
  ++depth_;
  return true;
}

bool Reader::CheckSize(int64_t size, Type element_type, const char* what) {
  if (size < 0) return Fail(std::string("negative ") + what + " size");
  size_t minimum = MinimumSize(protocol_, element_type);
  if (uint64_t(size) > remaining() / minimum)
    return Fail(std::string(what) + " of " + std::to_string(size) + " elements cannot fit in the " +
                std::to_string(remaining()) + " bytes left");
  return true;
}

bool Reader::ReadMessageBegin(MessageHeader& out) {
  uint8_t type = 0;
  if (protocol_ == Protocol::kCompact) {
    uint8_t id, version_and_type;
    if (!ReadRawByte(id, "message header")) return false;
    if (id != 0x82) return Fail("not a compact protocol message (first byte " + std::to_string(id) + ")");
    if (!ReadRawByte(version_and_type, "message header")) return false;
    if ((version_and_type & 0x1f) != 1) return Fail("unsupported compact protocol version " + std::to_string(version_and_type & 0x1f));
    type = version_and_type >> 5;
    uint64_t sequence;
    if (!ReadVarint(sequence, "message sequence id")) return false;
    if (sequence > std::numeric_limits<uint32_t>::max()) return Fail("message sequence id out of range");
    out.sequence_id = int32_t(uint32_t(sequence));
    if (!ReadString(out.name)) return false;
  } else {
    int32_t first;
    if (!ReadI32(first)) return false;
    if (first < 0) {
      // Strict header: version 1 in the high half, the message type in the low byte.
      if ((uint32_t(first) & 0xffff0000u) != 0x80010000u) return Fail("unsupported binary protocol version");
      type = uint8_t(uint32_t(first) & 0xff);
      if (!ReadString(out.name)) return false;
    } else {
      // Old header: the name's length first, then the name and the type byte.
      if (!Need(size_t(first), "message name")) return false;
      out.name = std::string_view(position_, size_t(first));
      position_ += first;
      if (!ReadRawByte(type, "message type")) return false;
    }
    if (!ReadI32(out.sequence_id)) return false;
  }
  if (type < 1 || type > 4) return Fail("unknown message type " + std::to_string(type));
  out.type = MessageType(type);
  return true;
}

bool Reader::ReadStructBegin() {
  if (!Enter()) return false;
  last_field_id_[struct_depth_++] = 0;
  return true;
}

bool Reader::ReadFieldBegin(FieldHeader& out) {
  if (!ok()) return false;
  if (struct_depth_ == 0) return Fail("field outside a struct");
  uint8_t first;
  if (!ReadRawByte(first, "field header")) return false;
  if (first == 0) {
    out = {Type::kStop, 0};
    --struct_depth_;
    Leave();
    return true;
  }
  if (protocol_ == Protocol::kBinary) {
    if (!ValidBinaryType(first)) return Fail("unknown field type " + std::to_string(first));
    int16_t id;
    if (!ReadI16(id)) return false;
    out = {Type(first), id};
    return true;
  }
  uint8_t nibble = first & 0x0f, delta = first >> 4;
  int16_t& last = last_field_id_[struct_depth_ - 1];
  int64_t id;
  if (delta == 0) {
    uint64_t raw;
    if (!ReadVarint(raw, "field id")) return false;
    id = UnZigZag64(raw);
    if (id < std::numeric_limits<int16_t>::min() || id > std::numeric_limits<int16_t>::max())
      return Fail("field id out of range");
  } else {
    id = int64_t(last) + delta;
    if (id > std::numeric_limits<int16_t>::max()) return Fail("field id out of range");
  }
  last = int16_t(id);
  if (!CompactType(nibble, out.type)) return false;
  out.id = int16_t(id);
  if (out.type == Type::kBool) {
    pending_bool_ = nibble == 1;
    has_pending_bool_ = true;
  }
  return true;
}

bool Reader::ReadListBegin(ListHeader& out) {
  if (!Enter()) return false;
  int64_t size;
  if (protocol_ == Protocol::kBinary) {
    uint8_t type;
    int32_t n;
    if (!ReadRawByte(type, "list header") || !ReadI32(n)) return false;
    if (!ValidBinaryType(type)) return Fail("unknown list element type " + std::to_string(type));
    out.element_type = Type(type);
    size = n;
  } else {
    uint8_t first;
    if (!ReadRawByte(first, "list header")) return false;
    if (!CompactType(first & 0x0f, out.element_type)) return false;
    size = first >> 4;
    if (size == 15) {
      uint64_t n;
      if (!ReadVarint(n, "list size")) return false;
      if (n > uint64_t(std::numeric_limits<int32_t>::max())) return Fail("list size out of range");
      size = int64_t(n);
    }
  }
  if (!CheckSize(size, out.element_type, "list")) return false;
  out.size = uint32_t(size);
  return true;
}

void Reader::ReadListEnd() { Leave(); }

bool Reader::ReadMapBegin(MapHeader& out) {
  if (!Enter()) return false;
  int64_t size;
  if (protocol_ == Protocol::kBinary) {
    uint8_t key, value;
    int32_t n;
    if (!ReadRawByte(key, "map header") || !ReadRawByte(value, "map header") || !ReadI32(n)) return false;
    if (!ValidBinaryType(key) || !ValidBinaryType(value)) return Fail("unknown map key or value type");
    out.key_type = Type(key);
    out.value_type = Type(value);
    size = n;
  } else {
    uint64_t n;
    if (!ReadVarint(n, "map size")) return false;
    if (n > uint64_t(std::numeric_limits<int32_t>::max())) return Fail("map size out of range");
    size = int64_t(n);
    out.key_type = out.value_type = Type::kStop;
    if (size > 0) {
      uint8_t types;
      if (!ReadRawByte(types, "map header")) return false;
      if (!CompactType(types >> 4, out.key_type) || !CompactType(types & 0x0f, out.value_type)) return false;
    }
  }
  if (size < 0) return Fail("negative map size");
  // Each entry takes at least a key and a value.
  size_t entry = MinimumSize(protocol_, out.key_type) + MinimumSize(protocol_, out.value_type);
  if (size > 0 && uint64_t(size) > remaining() / entry)
    return Fail("map of " + std::to_string(size) + " entries cannot fit in the " + std::to_string(remaining()) +
                " bytes left");
  out.size = uint32_t(size);
  return true;
}

void Reader::ReadMapEnd() { Leave(); }

bool Reader::ReadBool(bool& out) {
  if (protocol_ == Protocol::kCompact && has_pending_bool_) {
    has_pending_bool_ = false;
    out = pending_bool_;
    return true;
  }
  uint8_t b;
  if (!ReadRawByte(b, "bool")) return false;
  out = b == 1;  // compact containers: 1 true, 2 (or 0) false; binary: 1 true, 0 false
  return true;
}

bool Reader::ReadByte(int8_t& out) {
  uint8_t b;
  if (!ReadRawByte(b, "byte")) return false;
  out = int8_t(b);
  return true;
}

bool Reader::ReadI16(int16_t& out) {
  int64_t v;
  if (protocol_ == Protocol::kBinary) {
    uint64_t raw;
    if (!ReadBigEndian(2, raw, "i16")) return false;
    out = int16_t(uint16_t(raw));
    return true;
  }
  if (!ReadI64(v)) return false;
  if (v < std::numeric_limits<int16_t>::min() || v > std::numeric_limits<int16_t>::max()) return Fail("i16 out of range");
  out = int16_t(v);
  return true;
}

bool Reader::ReadI32(int32_t& out) {
  if (protocol_ == Protocol::kBinary) {
    uint64_t raw;
    if (!ReadBigEndian(4, raw, "i32")) return false;
    out = int32_t(uint32_t(raw));
    return true;
  }
  int64_t v;
  if (!ReadI64(v)) return false;
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) return Fail("i32 out of range");
  out = int32_t(v);
  return true;
}

bool Reader::ReadI64(int64_t& out) {
  uint64_t raw;
  if (protocol_ == Protocol::kBinary) {
    if (!ReadBigEndian(8, raw, "i64")) return false;
    out = int64_t(raw);
    return true;
  }
  if (!ReadVarint(raw, "integer")) return false;
  out = UnZigZag64(raw);
  return true;
}

bool Reader::ReadDouble(double& out) {
  uint64_t bits = 0;
  if (protocol_ == Protocol::kBinary) {
    if (!ReadBigEndian(8, bits, "double")) return false;
  } else {
    if (!Need(8, "double")) return false;
    for (int i = 7; i >= 0; --i) bits = bits << 8 | static_cast<uint8_t>(position_[i]);
    position_ += 8;
  }
  std::memcpy(&out, &bits, 8);
  return true;
}

bool Reader::ReadString(std::string_view& out) {
  int64_t length;
  if (protocol_ == Protocol::kBinary) {
    int32_t n;
    if (!ReadI32(n)) return false;
    length = n;
  } else {
    uint64_t n;
    if (!ReadVarint(n, "string length")) return false;
    if (n > uint64_t(std::numeric_limits<int32_t>::max())) return Fail("string length out of range");
    length = int64_t(n);
  }
  if (length < 0) return Fail("negative string length");
  if (!Need(size_t(length), "string")) return false;
  out = std::string_view(position_, size_t(length));
  position_ += length;
  return true;
}

bool Reader::Skip(Type type) {
  if (!ok()) return false;
  switch (type) {
    case Type::kBool: { bool v; return ReadBool(v); }
    case Type::kByte: { int8_t v; return ReadByte(v); }
    case Type::kI16: { int16_t v; return ReadI16(v); }
    case Type::kI32: { int32_t v; return ReadI32(v); }
    case Type::kI64: { int64_t v; return ReadI64(v); }
    case Type::kDouble: { double v; return ReadDouble(v); }
    case Type::kString: { std::string_view v; return ReadString(v); }
    case Type::kStruct: {
      if (!ReadStructBegin()) return false;
      for (;;) {
        FieldHeader field;
        if (!ReadFieldBegin(field)) return false;
        if (field.type == Type::kStop) return true;
        if (!Skip(field.type)) return false;
      }
    }
    case Type::kList:
    case Type::kSet: {
      ListHeader list;
      if (!ReadListBegin(list)) return false;
      for (uint32_t i = 0; i < list.size; ++i)
        if (!Skip(list.element_type)) return false;
      ReadListEnd();
      return true;
    }
    case Type::kMap: {
      MapHeader map;
      if (!ReadMapBegin(map)) return false;
      for (uint32_t i = 0; i < map.size; ++i)
        if (!Skip(map.key_type) || !Skip(map.value_type)) return false;
      ReadMapEnd();
      return true;
    }
    default: return Fail("cannot skip a value of unknown type " + std::to_string(int(type)));
  }
}

}  // namespace tracery::receiver::thrift
