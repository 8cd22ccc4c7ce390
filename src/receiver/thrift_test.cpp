// The Thrift reader on both protocols: every value type, skipping, the depth and size limits,
// and truncated input.
#include <gtest/gtest.h>

#include <limits>

#include "receiver/thrift.h"
#include "receiver/thrift_writer_for_tests.h"

namespace tracery::receiver::thrift {
namespace {

using testing::ThriftWriter;

class ThriftReaderTest : public ::testing::TestWithParam<Protocol> {};

INSTANTIATE_TEST_SUITE_P(Protocols, ThriftReaderTest, ::testing::Values(Protocol::kBinary, Protocol::kCompact),
                         [](const auto& info) { return info.param == Protocol::kBinary ? "Binary" : "Compact"; });

TEST_P(ThriftReaderTest, ReadsEveryValueType) {
  ThriftWriter w(GetParam());
  w.MessageBegin("emitBatch", 4, 123456);
  w.StructBegin();
  w.BoolField(1, true);
  w.BoolField(2, false);
  w.Field(Type::kByte, 3);
  w.Byte(-128);
  w.Field(Type::kI16, 4);
  w.I16(-32768);
  w.I32Field(5, std::numeric_limits<int32_t>::min());
  w.I64Field(6, std::numeric_limits<int64_t>::min());
  w.I64Field(7, std::numeric_limits<int64_t>::max());
  w.DoubleField(8, -1.25e300);
  w.StringField(40, std::string("bin\0ary", 7));  // a long field-id jump
  w.Field(Type::kList, 41);
  w.ListBegin(Type::kBool, 20);  // compact: a size past 14 takes the long form
  for (int i = 0; i < 20; ++i) w.Bool(i % 3 == 0);
  w.StructEnd();

  Reader r(GetParam(), w.bytes);
  MessageHeader header;
  ASSERT_TRUE(r.ReadMessageBegin(header)) << r.error();
  EXPECT_EQ(header.name, "emitBatch");
  EXPECT_EQ(header.type, MessageType::kOneway);
  EXPECT_EQ(header.sequence_id, 123456);
  ASSERT_TRUE(r.ReadStructBegin());
  FieldHeader f;
  bool b;
  ASSERT_TRUE(r.ReadFieldBegin(f));
  EXPECT_EQ(f.type, Type::kBool);
  EXPECT_EQ(f.id, 1);
  ASSERT_TRUE(r.ReadBool(b));
  EXPECT_TRUE(b);
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadBool(b));
  EXPECT_EQ(f.id, 2);
  EXPECT_FALSE(b);
  int8_t i8;
  int16_t i16;
  int32_t i32;
  int64_t i64;
  double d;
  std::string_view s;
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadByte(i8));
  EXPECT_EQ(i8, -128);
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadI16(i16));
  EXPECT_EQ(i16, -32768);
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadI32(i32));
  EXPECT_EQ(i32, std::numeric_limits<int32_t>::min());
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadI64(i64));
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadI64(i64));
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadDouble(d));
  EXPECT_EQ(d, -1.25e300);
  ASSERT_TRUE(r.ReadFieldBegin(f) && r.ReadString(s));
  EXPECT_EQ(f.id, 40);
  EXPECT_EQ(s, std::string_view("bin\0ary", 7));
  ASSERT_TRUE(r.ReadFieldBegin(f));
  EXPECT_EQ(f.type, Type::kList);
  ListHeader list;
  ASSERT_TRUE(r.ReadListBegin(list));
  EXPECT_EQ(list.element_type, Type::kBool);
  ASSERT_EQ(list.size, 20u);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(r.ReadBool(b));
    EXPECT_EQ(b, i % 3 == 0);
  }
  r.ReadListEnd();
  ASSERT_TRUE(r.ReadFieldBegin(f));
  EXPECT_EQ(f.type, Type::kStop);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST_P(ThriftReaderTest, SkipsEveryTypeAndKeepsFieldIdsOfTheEnclosingStruct) {
  ThriftWriter w(GetParam());
  w.StructBegin();
  w.I32Field(1, 5);
  testing::WriteUnknownFields(w);
  w.I32Field(97, 6);  // compact: a delta from 96, the outer struct's last id (not the nested one's)
  w.StructEnd();
  Reader r(GetParam(), w.bytes);
  ASSERT_TRUE(r.ReadStructBegin());
  FieldHeader f;
  std::vector<int> ids;
  for (;;) {
    ASSERT_TRUE(r.ReadFieldBegin(f)) << r.error();
    if (f.type == Type::kStop) break;
    ids.push_back(f.id);
    ASSERT_TRUE(r.Skip(f.type)) << r.error();
  }
  EXPECT_EQ(ids, (std::vector<int>{1, 90, 91, 92, 93, 94, 95, 96, 97}));
  EXPECT_EQ(r.remaining(), 0u);
}

TEST_P(ThriftReaderTest, StopsDeepNesting) {
  ThriftWriter w(GetParam());
  for (int i = 0; i < 200; ++i) {
    w.StructBegin();
    w.Field(Type::kStruct, 1);
  }
  Reader r(GetParam(), w.bytes);
  EXPECT_FALSE(r.Skip(Type::kStruct));
  EXPECT_NE(r.error().find("nesting deeper than 32"), std::string::npos) << r.error();

  ThriftWriter lists(GetParam());
  for (int i = 0; i < 200; ++i) lists.ListBegin(Type::kList, 1);
  Reader l(GetParam(), lists.bytes);
  EXPECT_FALSE(l.Skip(Type::kList));
  EXPECT_NE(l.error().find("nesting"), std::string::npos) << l.error();
}

TEST_P(ThriftReaderTest, RefusesSizesTheInputCannotHold) {
  for (int32_t size : {1'000'000, std::numeric_limits<int32_t>::max()}) {
    ThriftWriter w(GetParam());
    w.ListBegin(Type::kI64, size);
    w.I64(1);
    Reader r(GetParam(), w.bytes);
    ListHeader list;
    EXPECT_FALSE(r.ReadListBegin(list));
    EXPECT_NE(r.error().find("cannot fit"), std::string::npos) << r.error();
  }
  ThriftWriter map(GetParam());
  map.MapBegin(Type::kString, Type::kStruct, 100);
  Reader m(GetParam(), map.bytes);
  MapHeader header;
  EXPECT_FALSE(m.ReadMapBegin(header));
  ThriftWriter str(GetParam());
  str.String("abc");
  std::string truncated = str.bytes.substr(0, str.bytes.size() - 1);
  Reader s(GetParam(), truncated);
  std::string_view v;
  EXPECT_FALSE(s.ReadString(v));
  EXPECT_NE(s.error().find("input ends inside string"), std::string::npos) << s.error();
}

TEST_P(ThriftReaderTest, EveryTruncationFailsCleanly) {
  ThriftWriter w(GetParam());
  w.MessageBegin("m", 1, 1);
  w.StructBegin();
  testing::WriteUnknownFields(w);
  w.StructEnd();
  for (size_t n = 0; n < w.bytes.size(); ++n) {
    Reader r(GetParam(), std::string_view(w.bytes).substr(0, n));
    MessageHeader header;
    bool ok = r.ReadMessageBegin(header) && r.Skip(Type::kStruct);
    EXPECT_FALSE(ok) << "prefix of " << n << " bytes";
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.Skip(Type::kI32));  // nothing reads after a failure
  }
}

TEST(ThriftReaderTest, BinaryReadsTheOldMessageHeaderAndRefusesBadVersions) {
  std::string old_style = std::string("\0\0\0\x09", 4) + "emitBatch" + "\x04" + std::string("\0\0\0\x05", 4);
  Reader r(Protocol::kBinary, old_style);
  MessageHeader header;
  ASSERT_TRUE(r.ReadMessageBegin(header)) << r.error();
  EXPECT_EQ(header.name, "emitBatch");
  EXPECT_EQ(header.type, MessageType::kOneway);
  EXPECT_EQ(header.sequence_id, 5);

  std::string version2("\x80\x02\x00\x01\0\0\0\0\0\0\0\0", 12);
  Reader bad(Protocol::kBinary, version2);
  EXPECT_FALSE(bad.ReadMessageBegin(header));
  Reader compact(Protocol::kCompact, std::string_view("\x82\x22\x00\x00", 4));  // version 2
  EXPECT_FALSE(compact.ReadMessageBegin(header));
  Reader wrong_protocol_id(Protocol::kCompact, std::string_view("\x81\x21\x00\x00", 4));
  EXPECT_FALSE(wrong_protocol_id.ReadMessageBegin(header));
}

TEST(ThriftReaderTest, CompactRefusesUnknownTypesAndOverlongVarints) {
  Reader r(Protocol::kCompact, std::string_view("\x1d", 1));  // field 1 of type 13
  ASSERT_TRUE(r.ReadStructBegin());
  FieldHeader f;
  EXPECT_FALSE(r.ReadFieldBegin(f));
  std::string overlong(11, '\xff');
  Reader v(Protocol::kCompact, overlong);
  int64_t i;
  EXPECT_FALSE(v.ReadI64(i));
  Reader out_of_range(Protocol::kCompact, std::string_view("\x80\x80\x04", 3));  // 65536 zigzagged
  int16_t small;
  EXPECT_FALSE(out_of_range.ReadI16(small));
}

}  // namespace
}  // namespace tracery::receiver::thrift
