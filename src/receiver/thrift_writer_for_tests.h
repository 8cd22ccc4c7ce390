// A small Thrift writer (binary and compact protocols) for tests, and encoders of Jaeger's
// Batch and emitBatch built on it: what the receivers' tests feed the readers. Written from
// the protocol specifications, independently of the reader.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "receiver/thrift.h"

namespace tracery::receiver::testing {

class ThriftWriter {
 public:
  using Type = thrift::Type;
  explicit ThriftWriter(thrift::Protocol protocol) : compact_(protocol == thrift::Protocol::kCompact) {}
  std::string bytes;

  void MessageBegin(std::string_view name, uint8_t type, int32_t sequence_id) {
    if (compact_) {
      bytes.push_back(char(0x82));
      bytes.push_back(char(type << 5 | 1));
      Varint(uint32_t(sequence_id));
      String(name);
    } else {
      BigEndian(0x80010000u | type, 4);
      String(name);
      I32(sequence_id);
    }
  }
  void StructBegin() { last_ids_.push_back(0); }
  void StructEnd() {
    bytes.push_back(0);
    last_ids_.pop_back();
  }
  void Field(Type type, int16_t id) { FieldWithCode(id, compact_ ? CompactCode(type) : uint8_t(type)); }
  void BoolField(int16_t id, bool v) {
    if (compact_) return FieldWithCode(id, v ? 1 : 2);
    Field(Type::kBool, id);
    Bool(v);
  }
  void ListBegin(Type element, int32_t size) {
    if (!compact_) {
      bytes.push_back(char(element));
      I32(size);
    } else if (size < 15) {
      bytes.push_back(char(size << 4 | CompactCode(element)));
    } else {
      bytes.push_back(char(0xf0 | CompactCode(element)));
      Varint(uint32_t(size));
    }
  }
  void MapBegin(Type key, Type value, int32_t size) {
    if (!compact_) {
      bytes.push_back(char(key));
      bytes.push_back(char(value));
      I32(size);
      return;
    }
    Varint(uint32_t(size));
    if (size > 0) bytes.push_back(char(CompactCode(key) << 4 | CompactCode(value)));
  }
  void Bool(bool v) { bytes.push_back(char(v ? 1 : (compact_ ? 2 : 0))); }
  void Byte(int8_t v) { bytes.push_back(char(v)); }
  void I16(int16_t v) { compact_ ? Varint(ZigZag(v)) : BigEndian(uint16_t(v), 2); }
  void I32(int32_t v) { compact_ ? Varint(ZigZag(v)) : BigEndian(uint32_t(v), 4); }
  void I64(int64_t v) { compact_ ? Varint(ZigZag(v)) : BigEndian(uint64_t(v), 8); }
  void Double(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    if (!compact_) return BigEndian(bits, 8);
    for (int i = 0; i < 8; ++i) bytes.push_back(char(bits >> (8 * i)));
  }
  void String(std::string_view s) {
    compact_ ? Varint(s.size()) : I32(int32_t(s.size()));
    bytes.append(s);
  }

  void I32Field(int16_t id, int32_t v) { Field(Type::kI32, id); I32(v); }
  void I64Field(int16_t id, int64_t v) { Field(Type::kI64, id); I64(v); }
  void DoubleField(int16_t id, double v) { Field(Type::kDouble, id); Double(v); }
  void StringField(int16_t id, std::string_view v) { Field(Type::kString, id); String(v); }

 private:
  static uint8_t CompactCode(Type type) {
    switch (type) {
      case Type::kBool: return 1;
      case Type::kByte: return 3;
      case Type::kI16: return 4;
      case Type::kI32: return 5;
      case Type::kI64: return 6;
      case Type::kDouble: return 7;
      case Type::kString: return 8;
      case Type::kList: return 9;
      case Type::kSet: return 10;
      case Type::kMap: return 11;
      case Type::kStruct: return 12;
      default: return 0;
    }
  }
  static uint64_t ZigZag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      bytes.push_back(char(v | 0x80));
      v >>= 7;
    }
    bytes.push_back(char(v));
  }
  void BigEndian(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes.push_back(char(v >> (8 * i)));
  }
  void FieldWithCode(int16_t id, uint8_t code) {
    if (!compact_) {
      bytes.push_back(char(code));
      BigEndian(uint16_t(id), 2);
      return;
    }
    int16_t& last = last_ids_.back();
    if (id > last && id - last <= 15) {
      bytes.push_back(char((id - last) << 4 | code));
    } else {
      bytes.push_back(char(code));
      Varint(ZigZag(id));
    }
    last = id;
  }

  bool compact_;
  std::vector<int16_t> last_ids_;
};

// ---------------------------------------------------------------------------------------
// jaeger.thrift values, as tests describe them.

struct TagSpec {
  std::string key;
  int32_t type = 0;  // STRING, DOUBLE, BOOL, LONG, BINARY
  std::string text;  // STRING and BINARY
  double number = 0;
  bool flag = false;
  int64_t integer = 0;
};
inline TagSpec StringTag(std::string key, std::string value) { return {std::move(key), 0, std::move(value)}; }
inline TagSpec DoubleTag(std::string key, double v) { return {std::move(key), 1, "", v}; }
inline TagSpec BoolTag(std::string key, bool v) { return {std::move(key), 2, "", 0, v}; }
inline TagSpec LongTag(std::string key, int64_t v) { return {std::move(key), 3, "", 0, false, v}; }
inline TagSpec BinaryTag(std::string key, std::string v) { return {std::move(key), 4, std::move(v)}; }

struct RefSpec {
  int32_t type = 0;  // CHILD_OF, FOLLOWS_FROM
  int64_t trace_low = 0, trace_high = 0, span_id = 0;
};
struct LogSpec {
  int64_t timestamp = 0;  // µs
  std::vector<TagSpec> fields;
};
struct SpanSpec {
  int64_t trace_low = 0, trace_high = 0, span_id = 0, parent_span_id = 0;
  std::string operation_name;
  std::vector<RefSpec> references;
  int32_t flags = 1;
  int64_t start_time = 0, duration = 0;  // µs
  std::vector<TagSpec> tags;
  std::vector<LogSpec> logs;
};
struct BatchSpec {
  std::string service_name = "svc";
  std::vector<TagSpec> process_tags;
  std::vector<SpanSpec> spans;
  bool process_after_spans = false;
  bool unknown_fields = false;  // adds fields of every type the reader must skip
};

// Writes values of every Thrift type under unknown field ids (90..), nested.
inline void WriteUnknownFields(ThriftWriter& w) {
  using Type = thrift::Type;
  w.BoolField(90, true);
  w.Field(Type::kByte, 91);
  w.Byte(-7);
  w.Field(Type::kI16, 92);
  w.I16(-300);
  w.DoubleField(93, 2.5);
  w.Field(Type::kMap, 94);
  w.MapBegin(Type::kString, Type::kList, 1);
  w.String("k");
  w.ListBegin(Type::kBool, 2);
  w.Bool(true);
  w.Bool(false);
  w.Field(Type::kSet, 95);
  w.ListBegin(Type::kI32, 2);
  w.I32(1);
  w.I32(-1);
  w.Field(Type::kStruct, 96);
  w.StructBegin();
  w.StringField(1, "nested");
  w.Field(Type::kStruct, 200);
  w.StructBegin();
  w.BoolField(3, false);
  w.StructEnd();
  w.StructEnd();
}

inline void WriteTag(ThriftWriter& w, const TagSpec& tag) {
  w.StructBegin();
  w.StringField(1, tag.key);
  w.I32Field(2, tag.type);
  if (tag.type == 0) w.StringField(3, tag.text);
  if (tag.type == 1) w.DoubleField(4, tag.number);
  if (tag.type == 2) w.BoolField(5, tag.flag);
  if (tag.type == 3) w.I64Field(6, tag.integer);
  if (tag.type == 4) w.StringField(7, tag.text);
  w.StructEnd();
}

inline void WriteTags(ThriftWriter& w, int16_t id, const std::vector<TagSpec>& tags) {
  w.Field(thrift::Type::kList, id);
  w.ListBegin(thrift::Type::kStruct, int32_t(tags.size()));
  for (const auto& tag : tags) WriteTag(w, tag);
}

inline void WriteSpan(ThriftWriter& w, const SpanSpec& span, bool unknown_fields) {
  using Type = thrift::Type;
  w.StructBegin();
  w.I64Field(1, span.trace_low);
  w.I64Field(2, span.trace_high);
  w.I64Field(3, span.span_id);
  w.I64Field(4, span.parent_span_id);
  w.StringField(5, span.operation_name);
  if (!span.references.empty()) {
    w.Field(Type::kList, 6);
    w.ListBegin(Type::kStruct, int32_t(span.references.size()));
    for (const auto& ref : span.references) {
      w.StructBegin();
      w.I32Field(1, ref.type);
      w.I64Field(2, ref.trace_low);
      w.I64Field(3, ref.trace_high);
      w.I64Field(4, ref.span_id);
      w.StructEnd();
    }
  }
  w.I32Field(7, span.flags);
  w.I64Field(8, span.start_time);
  w.I64Field(9, span.duration);
  if (!span.tags.empty()) WriteTags(w, 10, span.tags);
  if (!span.logs.empty()) {
    w.Field(Type::kList, 11);
    w.ListBegin(Type::kStruct, int32_t(span.logs.size()));
    for (const auto& log : span.logs) {
      w.StructBegin();
      w.I64Field(1, log.timestamp);
      WriteTags(w, 2, log.fields);
      w.StructEnd();
    }
  }
  if (unknown_fields) {
    w.BoolField(12, false);  // `incomplete`, newer than most readers
    WriteUnknownFields(w);
  }
  w.StructEnd();
}

inline void WriteBatchStruct(ThriftWriter& w, const BatchSpec& batch) {
  using Type = thrift::Type;
  auto process = [&] {
    w.Field(Type::kStruct, 1);
    w.StructBegin();
    w.StringField(1, batch.service_name);
    if (!batch.process_tags.empty()) WriteTags(w, 2, batch.process_tags);
    if (batch.unknown_fields) WriteUnknownFields(w);
    w.StructEnd();
  };
  w.StructBegin();
  if (batch.unknown_fields) WriteUnknownFields(w);
  if (!batch.process_after_spans) process();
  w.Field(Type::kList, 2);
  w.ListBegin(Type::kStruct, int32_t(batch.spans.size()));
  for (const auto& span : batch.spans) WriteSpan(w, span, batch.unknown_fields);
  if (batch.process_after_spans) process();
  w.StructEnd();
}

inline std::string EncodeBatch(thrift::Protocol protocol, const BatchSpec& batch) {
  ThriftWriter w(protocol);
  WriteBatchStruct(w, batch);
  return w.bytes;
}

// agent.thrift emitBatch(1: Batch), type 4 = ONEWAY (1 = CALL).
inline std::string EncodeEmitBatch(thrift::Protocol protocol, const BatchSpec& batch, std::string_view name = "emitBatch",
                                   uint8_t type = 4) {
  ThriftWriter w(protocol);
  w.MessageBegin(name, type, 7);
  w.StructBegin();
  w.Field(thrift::Type::kStruct, 1);
  WriteBatchStruct(w, batch);
  w.StructEnd();
  return w.bytes;
}

}  // namespace tracery::receiver::testing
