// A pull reader for Apache Thrift's binary and compact protocols, enough to decode what Jaeger
// clients send (jaeger.thrift's Batch, agent.thrift's emitBatch message) without generated
// code. It reads from one buffer and never copies: strings are views into it.
//
// Hostile input is expected (UDP datagrams, HTTP bodies): every read checks the bytes left,
// nesting (structs, lists, sets, maps, counted together) stops at `max_depth`, and a
// container's announced size is checked against the bytes left before anything is read, so
// an element count can never make the caller allocate more than the input could hold. After
// the first failure every call returns false and error() names what failed and where.
//
// Wire formats (from the Thrift protocol specifications):
//   binary:  big-endian fixed-width integers; double as its 8 IEEE-754 bytes, big-endian;
//            string/binary = i32 length + bytes; field = type byte + i16 id (type 0 = stop);
//            list/set = element type byte + i32 size; map = key type, value type, i32 size;
//            message = i32 (0x80010000 | type) + name + i32 sequence id (strict), or the
//            older name + type byte + i32 sequence id.
//   compact: integers zigzag varints (byte: one raw byte); double 8 bytes little-endian;
//            string = varint length + bytes; field = byte (id delta << 4 | type), or delta 0
//            and a zigzag i16 id; bools live in the field type (1 true, 2 false) and are one
//            byte (1 true) inside containers; list/set = byte (size << 4 | type), size 15
//            meaning a varint size follows; map = varint size, then (key << 4 | value) types
//            unless empty; message = 0x82, (type << 5 | version 1), varint sequence id, name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tracery::receiver::thrift {

enum class Protocol { kBinary, kCompact };

// Thrift's type identifiers as the binary protocol writes them; the compact reader reports
// its own identifiers translated to these.
enum class Type : uint8_t {
  kStop = 0,
  kBool = 2,
  kByte = 3,
  kDouble = 4,
  kI16 = 6,
  kI32 = 8,
  kI64 = 10,
  kString = 11,  // string and binary
  kStruct = 12,
  kMap = 13,
  kSet = 14,
  kList = 15,
};

enum class MessageType : uint8_t { kCall = 1, kReply = 2, kException = 3, kOneway = 4 };

struct MessageHeader {
  std::string_view name;
  MessageType type = MessageType::kCall;
  int32_t sequence_id = 0;
};

struct FieldHeader {
  Type type = Type::kStop;  // kStop: the struct has ended (its end is already consumed)
  int16_t id = 0;
};

struct ListHeader {
  Type element_type = Type::kStop;
  uint32_t size = 0;
};

struct MapHeader {
  Type key_type = Type::kStop;
  Type value_type = Type::kStop;
  uint32_t size = 0;
};

class Reader {
 public:
  static constexpr int kDefaultMaxDepth = 32;
  Reader(Protocol protocol, std::string_view bytes, int max_depth = kDefaultMaxDepth);

  bool ReadMessageBegin(MessageHeader& out);
  // A struct is StructBegin, then FieldBegin until it reports kStop (which also ends the
  // struct: no StructEnd call), reading or Skip()ping each field's value in between.
  bool ReadStructBegin();
  bool ReadFieldBegin(FieldHeader& out);
  // Lists and sets share a header; ReadListEnd after the last element.
  bool ReadListBegin(ListHeader& out);
  void ReadListEnd();
  bool ReadMapBegin(MapHeader& out);
  void ReadMapEnd();

  bool ReadBool(bool& out);
  bool ReadByte(int8_t& out);
  bool ReadI16(int16_t& out);
  bool ReadI32(int32_t& out);
  bool ReadI64(int64_t& out);
  bool ReadDouble(double& out);
  bool ReadString(std::string_view& out);  // string and binary

  // Reads a value of `type` and throws it away (unknown fields, fields of an unexpected type).
  bool Skip(Type type);

  // Marks the input malformed for a reason the caller found (a required field missing...).
  bool Fail(std::string message);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t offset() const { return size_t(position_ - begin_); }
  size_t remaining() const { return size_t(end_ - position_); }

 private:
  bool Need(size_t n, const char* what);
  bool ReadRawByte(uint8_t& out, const char* what);
  bool ReadVarint(uint64_t& out, const char* what);
  bool ReadBigEndian(int bytes, uint64_t& out, const char* what);
  bool CompactType(uint8_t nibble, Type& out);
  bool Enter();
  void Leave() { --depth_; }
  bool CheckSize(int64_t size, Type element_type, const char* what);

  Protocol protocol_;
  const char* begin_;
  const char* position_;
  const char* end_;
  int max_depth_;
  int depth_ = 0;
  std::string error_;
  // Compact protocol: field ids are deltas from the previous field of the same struct, and a
  // bool field's value is in its header.
  static constexpr int kMaxIdStack = 64;
  int16_t last_field_id_[kMaxIdStack] = {};
  int struct_depth_ = 0;
  bool pending_bool_ = false;
  bool has_pending_bool_ = false;
};

}  // namespace tracery::receiver::thrift
