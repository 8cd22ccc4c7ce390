// Decoders of what Jaeger clients send over Thrift: jaeger.thrift's Batch (binary or compact
// protocol) and agent.thrift's emitBatch message. Field numbers are those of the Jaeger IDL;
// Thrift's required fields are required here too (as Jaeger's generated readers require
// them); unknown fields are skipped.
#include <string>

#include "receiver/jaeger_model.h"

namespace tracery::receiver {
namespace {

using thrift::FieldHeader;
using thrift::ListHeader;
using thrift::Reader;
using thrift::Type;

// ---------------------------------------------------------------------------------------
// Thrift

// jaeger.thrift TagType: STRING, DOUBLE, BOOL, LONG, BINARY.
otlp::AnyValue ThriftTagValue(int32_t type, std::string_view text, double number, bool flag, int64_t integer,
                              std::string_view binary) {
  otlp::AnyValue v;
  switch (type) {
    case 0: return jaeger::StringValue(text);
    case 1: v.type = otlp::AnyValue::Type::kDouble; v.double_value = number; return v;
    case 2: v.type = otlp::AnyValue::Type::kBool; v.bool_value = flag; return v;
    case 3: v.type = otlp::AnyValue::Type::kInt; v.int_value = integer; return v;
    case 4: v.type = otlp::AnyValue::Type::kBytes; v.string_value = std::string(binary); return v;
    default: return jaeger::StringValue("<Unknown Jaeger TagType " + std::to_string(type) + ">");
  }
}

// Reads a list header that must hold structs and charges its size to `items`.
bool ReadStructList(Reader& reader, ListHeader& list, size_t& items, const char* what) {
  if (!reader.ReadListBegin(list)) return false;
  if (list.size > 0 && list.element_type != Type::kStruct) return reader.Fail(std::string(what) + " must be a list of structs");
  items += list.size;
  if (items > kJaegerMaxItemsPerSpan)
    return reader.Fail("more than " + std::to_string(kJaegerMaxItemsPerSpan) + " tags, logs and references in one span");
  return true;
}

// Tag {1: key, 2: vType, 3: vStr, 4: vDouble, 5: vBool, 6: vLong, 7: vBinary}
bool ReadThriftTag(Reader& reader, otlp::KeyValue& out) {
  if (!reader.ReadStructBegin()) return false;
  bool has_key = false, has_type = false, flag = false;
  int32_t type = 0;
  std::string_view key, text, binary;
  double number = 0;
  int64_t integer = 0;
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return false;
    if (field.type == Type::kStop) break;
    bool read = false;
    switch (field.id) {
      case 1: if (field.type == Type::kString) read = has_key = reader.ReadString(key); break;
      case 2: if (field.type == Type::kI32) read = has_type = reader.ReadI32(type); break;
      case 3: if (field.type == Type::kString) read = reader.ReadString(text); break;
      case 4: if (field.type == Type::kDouble) read = reader.ReadDouble(number); break;
      case 5: if (field.type == Type::kBool) read = reader.ReadBool(flag); break;
      case 6: if (field.type == Type::kI64) read = reader.ReadI64(integer); break;
      case 7: if (field.type == Type::kString) read = reader.ReadString(binary); break;
    }
    if (!read && !reader.Skip(field.type)) return false;
  }
  if (!has_key || !has_type) return reader.Fail("Tag without its required key and vType");
  out.key = std::string(key);
  out.value = ThriftTagValue(type, text, number, flag, integer, binary);
  return true;
}

bool ReadThriftTags(Reader& reader, otlp::Attributes& out, size_t& items, const char* what) {
  ListHeader list;
  if (!ReadStructList(reader, list, items, what)) return false;
  out.reserve(out.size() + list.size);
  for (uint32_t i = 0; i < list.size; ++i)
    if (!ReadThriftTag(reader, out.emplace_back())) return false;
  reader.ReadListEnd();
  return true;
}

// Log {1: timestamp (µs), 2: fields}
bool ReadThriftLog(Reader& reader, jaeger::Log& out, size_t& items) {
  if (!reader.ReadStructBegin()) return false;
  bool has_time = false, has_fields = false;
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return false;
    if (field.type == Type::kStop) break;
    bool read = false;
    if (field.id == 1 && field.type == Type::kI64) {
      int64_t micros;
      read = has_time = reader.ReadI64(micros);
      out.time_unix_nano = uint64_t(micros) * 1000;
    } else if (field.id == 2 && field.type == Type::kList) {
      read = has_fields = ReadThriftTags(reader, out.fields, items, "Log.fields");
      if (!read) return false;
    }
    if (!read && !reader.Skip(field.type)) return false;
  }
  if (!has_time || !has_fields) return reader.Fail("Log without its required timestamp and fields");
  return true;
}

// SpanRef {1: refType, 2: traceIdLow, 3: traceIdHigh, 4: spanId}
bool ReadThriftReference(Reader& reader, jaeger::Reference& out) {
  if (!reader.ReadStructBegin()) return false;
  int seen = 0;
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return false;
    if (field.type == Type::kStop) break;
    bool read = false;
    int64_t v = 0;
    if (field.id == 1 && field.type == Type::kI32) {
      read = reader.ReadI32(out.type);
    } else if (field.id >= 2 && field.id <= 4 && field.type == Type::kI64) {
      read = reader.ReadI64(v);
      (field.id == 2 ? out.trace_low : field.id == 3 ? out.trace_high : out.span_id) = uint64_t(v);
    }
    if (read) seen |= 1 << field.id;
    if (!read && !reader.Skip(field.type)) return false;
  }
  if (seen != 0b11110) return reader.Fail("SpanRef without its required fields");
  return true;
}

// Span {1: traceIdLow, 2: traceIdHigh, 3: spanId, 4: parentSpanId, 5: operationName,
//       6: references, 7: flags, 8: startTime (µs), 9: duration (µs), 10: tags, 11: logs,
//       12: incomplete}
bool ReadThriftSpan(Reader& reader, jaeger::Span& out) {
  if (!reader.ReadStructBegin()) return false;
  uint32_t seen = 0;
  int64_t start = 0, duration = 0;
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return false;
    if (field.type == Type::kStop) break;
    bool read = false;
    int64_t v = 0;
    ListHeader list;
    switch (field.id) {
      case 1: case 2: case 3: case 4: case 8: case 9:
        if (field.type != Type::kI64) break;
        if (!(read = reader.ReadI64(v))) return false;
        switch (field.id) {
          case 1: out.trace_low = uint64_t(v); break;
          case 2: out.trace_high = uint64_t(v); break;
          case 3: out.span_id = uint64_t(v); break;
          case 4: out.parent_span_id = uint64_t(v); break;
          case 8: start = v; break;
          case 9: duration = v; break;
        }
        break;
      case 5:
        if (field.type == Type::kString && !(read = reader.ReadString(out.operation_name))) return false;
        break;
      case 7:
        if (field.type == Type::kI32) {
          int32_t flags;
          if (!(read = reader.ReadI32(flags))) return false;
          out.flags = uint32_t(flags);
        }
        break;
      case 6:
        if (field.type != Type::kList) break;
        if (!ReadStructList(reader, list, out.items, "Span.references")) return false;
        for (uint32_t i = 0; i < list.size; ++i)
          if (!ReadThriftReference(reader, out.references.emplace_back())) return false;
        reader.ReadListEnd();
        read = true;
        break;
      case 10:
        if (field.type == Type::kList && !(read = ReadThriftTags(reader, out.tags, out.items, "Span.tags"))) return false;
        break;
      case 11:
        if (field.type != Type::kList) break;
        if (!ReadStructList(reader, list, out.items, "Span.logs")) return false;
        for (uint32_t i = 0; i < list.size; ++i)
          if (!ReadThriftLog(reader, out.logs.emplace_back(), out.items)) return false;
        reader.ReadListEnd();
        read = true;
        break;
    }
    if (read) seen |= 1u << field.id;
    if (!read && !reader.Skip(field.type)) return false;
  }
  constexpr uint32_t kRequired = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 7 | 1u << 8 | 1u << 9;
  if ((seen & kRequired) != kRequired) return reader.Fail("Span without all its required fields");
  out.start_unix_nano = uint64_t(start) * 1000;
  out.end_unix_nano = (uint64_t(start) + uint64_t(duration)) * 1000;
  return true;
}

// Process {1: serviceName, 2: tags}
bool ReadThriftProcess(Reader& reader, jaeger::Process& out) {
  if (!reader.ReadStructBegin()) return false;
  bool has_name = false;
  size_t items = 0;
  out.tags.clear();
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return false;
    if (field.type == Type::kStop) break;
    bool read = false;
    if (field.id == 1 && field.type == Type::kString) {
      if (!(read = has_name = reader.ReadString(out.service_name))) return false;
    } else if (field.id == 2 && field.type == Type::kList) {
      if (!(read = ReadThriftTags(reader, out.tags, items, "Process.tags"))) return false;
    }
    if (!read && !reader.Skip(field.type)) return false;
  }
  if (!has_name) return reader.Fail("Process without its required serviceName");
  out.present = true;
  return true;
}

Status ThriftError(const Reader& reader) {
  return Status::InvalidArgument("malformed Jaeger Thrift batch: " + reader.error());
}

}  // namespace

// Batch {1: process, 2: spans}. The process may follow the spans on the wire, so a first pass
// reads it and skips the spans; the second maps the spans one by one.
Result<JaegerConversion> JaegerThriftBatchToOtlp(thrift::Protocol protocol, std::string_view batch) {
  jaeger::Process process;
  bool has_spans = false;
  {
    Reader reader(protocol, batch);
    if (!reader.ReadStructBegin()) return ThriftError(reader);
    for (;;) {
      FieldHeader field;
      if (!reader.ReadFieldBegin(field)) return ThriftError(reader);
      if (field.type == Type::kStop) break;
      if (field.id == 1 && field.type == Type::kStruct) {
        if (!ReadThriftProcess(reader, process)) return ThriftError(reader);
        continue;
      }
      has_spans |= field.id == 2 && field.type == Type::kList;
      if (!reader.Skip(field.type)) return ThriftError(reader);
    }
    if (!process.present || !has_spans) {
      reader.Fail("Batch without its required process and spans");
      return ThriftError(reader);
    }
  }
  std::string resource = jaeger::EncodeProcess(process);
  jaeger::RequestBuilder builder;
  Reader reader(protocol, batch);
  reader.ReadStructBegin();
  size_t index = 0;
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return ThriftError(reader);
    if (field.type == Type::kStop) break;
    if (field.id != 2 || field.type != Type::kList) {
      if (!reader.Skip(field.type)) return ThriftError(reader);
      continue;
    }
    ListHeader list;
    if (!reader.ReadListBegin(list)) return ThriftError(reader);
    if (list.size > 0 && list.element_type != Type::kStruct) {
      reader.Fail("Batch.spans must be a list of structs");
      return ThriftError(reader);
    }
    for (uint32_t i = 0; i < list.size; ++i, ++index) {
      jaeger::Span span;
      if (!ReadThriftSpan(reader, span)) return ThriftError(reader);
      TRACERY_RETURN_IF_ERROR(builder.AddSpan(span, index, resource));
    }
    reader.ReadListEnd();
  }
  return builder.Finish();
}

// agent.thrift: oneway void emitBatch(1: jaeger.Batch batch), as a CALL or ONEWAY message.
Result<JaegerConversion> JaegerAgentMessageToOtlp(thrift::Protocol protocol, std::string_view message) {
  Reader reader(protocol, message);
  thrift::MessageHeader header;
  auto error = [&] { return Status::InvalidArgument("malformed Jaeger agent message: " + reader.error()); };
  if (!reader.ReadMessageBegin(header)) return error();
  if (header.name != "emitBatch")
    return Status::UnsupportedMedia("unsupported Jaeger agent method '" + std::string(header.name.substr(0, 64)) +
                                    "' (only emitBatch is served)");
  if (header.type != thrift::MessageType::kCall && header.type != thrift::MessageType::kOneway) {
    reader.Fail("emitBatch is not a call");
    return error();
  }
  if (!reader.ReadStructBegin()) return error();
  std::string_view batch;
  for (;;) {
    FieldHeader field;
    if (!reader.ReadFieldBegin(field)) return error();
    if (field.type == Type::kStop) break;
    size_t start = reader.offset();
    if (!reader.Skip(field.type)) return error();
    if (field.id == 1 && field.type == Type::kStruct) batch = message.substr(start, reader.offset() - start);
  }
  if (batch.empty()) {
    reader.Fail("emitBatch without a batch");
    return error();
  }
  return JaegerThriftBatchToOtlp(protocol, batch);
}

}  // namespace tracery::receiver
