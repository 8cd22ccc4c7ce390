// Unit tests of the common utilities: checksums, ID codecs, durations and sizes, gzip with a
// limit, tenant IDs and the metrics registry.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/compression.h"
#include "common/compress_for_tests.h"
#include "common/utf8.h"
#include "common/crc32c.h"
#include "common/duration.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/tenant.h"

namespace tracery {
namespace {

using namespace std::chrono_literals;

// ---- CRC32C ---------------------------------------------------------------------------------

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c(std::string_view("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(std::string_view("")), 0u);
}

TEST(Crc32cTest, IncrementalEqualsWhole) {
  std::mt19937 rng(7);
  std::string data(1000, '\0');
  for (auto& c : data) c = char(rng());
  uint32_t whole = Crc32c(data);
  // Split at every position, including unaligned ones on both sides of the 8-byte loop.
  for (size_t cut = 0; cut <= data.size(); cut += 37) {
    uint32_t first = Crc32c(data.data(), cut);
    uint32_t both = Crc32c(data.data() + cut, data.size() - cut, first);
    EXPECT_EQ(both, whole) << "cut at " << cut;
  }
  uint32_t running = 0;
  for (size_t i = 0; i < data.size(); ++i) running = Crc32c(data.data() + i, 1, running);
  EXPECT_EQ(running, whole);
}

TEST(Crc32cTest, DetectsASingleBitFlip) {
  std::string data = "the quick brown fox jumps over the lazy dog";
  uint32_t before = Crc32c(data);
  data[10] ^= 1;
  EXPECT_NE(Crc32c(data), before);
}

// ---- hex and base64 -------------------------------------------------------------------------

TEST(HexTest, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  std::string hex = HexEncode(all);
  EXPECT_EQ(hex.size(), 512u);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(hex.size() - 4), "feff");
  auto back = HexDecode(hex);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
}

TEST(HexTest, DecodesBothCases) {
  EXPECT_EQ(HexDecode("ABcd0f"), std::optional<std::string>(std::string("\xab\xcd\x0f", 3)));
  EXPECT_EQ(HexDecode(""), std::optional<std::string>(std::string()));
}

TEST(HexTest, RejectsBadInput) {
  EXPECT_FALSE(HexDecode("abc").has_value());   // odd length
  EXPECT_FALSE(HexDecode("zz").has_value());
  EXPECT_FALSE(HexDecode("0g").has_value());
  EXPECT_FALSE(HexDecode("0 ").has_value());
  EXPECT_FALSE(HexDecode(std::string_view("0\0", 2)).has_value());
}

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Decode("Zm9vYmE="), std::optional<std::string>("fooba"));
  EXPECT_EQ(Base64Decode("Zm9vYg"), std::optional<std::string>("foob"));  // padding optional
  EXPECT_EQ(Base64Decode("-_8"), std::optional<std::string>("\xfb\xff"));  // URL-safe alphabet
}

TEST(Base64Test, RoundTripsRandomBytes) {
  std::mt19937 rng(11);
  for (size_t n = 0; n < 70; ++n) {
    std::string data(n, '\0');
    for (auto& c : data) c = char(rng());
    auto back = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, data) << n;
  }
}

TEST(Base64Test, RejectsCharactersOutsideTheAlphabet) {
  EXPECT_FALSE(Base64Decode("Zm9v!").has_value());
  EXPECT_FALSE(Base64Decode("Zm 9v").has_value());
  EXPECT_FALSE(Base64Decode("Zm9v\n").has_value());
}

TEST(Base64Test, RejectsGarbageAfterPadding) {
  // Decoding stops at the first '=', so whatever follows it must still be checked: a body
  // with junk after the padding is not valid base64.
  EXPECT_FALSE(Base64Decode("Zg==!!!!").has_value());
  EXPECT_FALSE(Base64Decode("Zg==Zm9v").has_value());
}

// ---- trace IDs --------------------------------------------------------------------------------

TEST(TraceIdTest, ParsesFullLengthIds) {
  auto id = ParseTraceIdHex("0102030405060708090a0b0c0d0e0f10");
  ASSERT_TRUE(id.has_value());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(id->bytes[i], i + 1);
  EXPECT_EQ(id->Hex(), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(ParseTraceIdHex("0102030405060708090A0B0C0D0E0F10"), id);
}

TEST(TraceIdTest, LeftPadsShortIds) {
  auto id = ParseTraceIdHex("abc");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->Hex(), "00000000000000000000000000000abc");
  auto sixteen = ParseTraceIdHex("1234567890abcdef");
  ASSERT_TRUE(sixteen.has_value());
  EXPECT_EQ(sixteen->Hex(), "00000000000000001234567890abcdef");
  EXPECT_EQ(ParseTraceIdHex("1")->Hex(), "00000000000000000000000000000001");
}

TEST(TraceIdTest, RejectsBadIds) {
  EXPECT_FALSE(ParseTraceIdHex("").has_value());
  EXPECT_FALSE(ParseTraceIdHex(std::string(33, 'a')).has_value());
  EXPECT_FALSE(ParseTraceIdHex("0102030405060708090a0b0c0d0e0f1g").has_value());
  EXPECT_FALSE(ParseTraceIdHex("xyz").has_value());
  EXPECT_FALSE(ParseTraceIdHex("-1").has_value());
}

TEST(TraceIdTest, OrderIsByteOrderAndHashIsStable) {
  TraceId a = *ParseTraceIdHex("01000000000000000000000000000000");
  TraceId b = *ParseTraceIdHex("00ffffffffffffffffffffffffffffff");
  EXPECT_LT(b, a);
  EXPECT_EQ(a.Hash(), ParseTraceIdHex("01000000000000000000000000000000")->Hash());
  EXPECT_NE(a.Hash(), b.Hash());
  EXPECT_FALSE(a.IsZero());
  EXPECT_TRUE(TraceId().IsZero());
}

// ---- durations and sizes ----------------------------------------------------------------------

TEST(DurationTest, ParsesTempoStyleDurations) {
  EXPECT_EQ(ParseDuration("10s"), std::optional<Nanoseconds>(10s));
  EXPECT_EQ(ParseDuration("1m30s"), std::optional<Nanoseconds>(90s));
  EXPECT_EQ(ParseDuration("500ms"), std::optional<Nanoseconds>(500ms));
  EXPECT_EQ(ParseDuration("1h"), std::optional<Nanoseconds>(1h));
  EXPECT_EQ(ParseDuration("30m"), std::optional<Nanoseconds>(30min));
  EXPECT_EQ(ParseDuration("1h2m3s4ms"), std::optional<Nanoseconds>(1h + 2min + 3s + 4ms));
  EXPECT_EQ(ParseDuration("250us"), std::optional<Nanoseconds>(250us));
  EXPECT_EQ(ParseDuration("7ns"), std::optional<Nanoseconds>(7ns));
  EXPECT_EQ(ParseDuration("1.5s"), std::optional<Nanoseconds>(1500ms));
  EXPECT_EQ(ParseDuration("0"), std::optional<Nanoseconds>(0s));
}

TEST(DurationTest, RejectsBadDurations) {
  for (const char* bad : {"", "10", "s", "abc", "10 s", "10S", "-5s", "5x", "1m30", "ms10", "1h-1m", " 1s"})
    EXPECT_FALSE(ParseDuration(bad).has_value()) << "'" << bad << "'";
}

TEST(DurationTest, MicroSignUnit) {
  // duration.h and the parser itself name "µs" as a unit (Go's time.ParseDuration accepts it).
  EXPECT_EQ(ParseDuration("5µs"), std::optional<Nanoseconds>(5us));
}

TEST(DurationTest, MalformedNumbersAreRejectedNotThrown) {
  // Errors are values: a lone '.' must not escape as a std::invalid_argument from std::stold.
  std::optional<Nanoseconds> result;
  EXPECT_NO_THROW(result = ParseDuration(".s"));
  EXPECT_FALSE(result.has_value());
  EXPECT_NO_THROW(result = ParseDuration("..5m"));
  EXPECT_FALSE(result.has_value());
}

TEST(DurationTest, OverflowIsRejected) {
  // 10^10 hours is about 3.6e22 ns, far past what int64 nanoseconds hold.
  auto huge = ParseDuration("10000000000h");
  EXPECT_FALSE(huge.has_value()) << "parsed as " << huge->count() << " ns";
}

TEST(ByteSizeTest, ParsesUnits) {
  EXPECT_EQ(ParseByteSize("0"), std::optional<uint64_t>(0));
  EXPECT_EQ(ParseByteSize("123"), std::optional<uint64_t>(123));
  EXPECT_EQ(ParseByteSize("10B"), std::optional<uint64_t>(10));
  EXPECT_EQ(ParseByteSize("15KB"), std::optional<uint64_t>(15000));
  EXPECT_EQ(ParseByteSize("15MB"), std::optional<uint64_t>(15'000'000));
  EXPECT_EQ(ParseByteSize("2GB"), std::optional<uint64_t>(2'000'000'000));
  EXPECT_EQ(ParseByteSize("4KiB"), std::optional<uint64_t>(4096));
  EXPECT_EQ(ParseByteSize("128MiB"), std::optional<uint64_t>(128ull << 20));
  EXPECT_EQ(ParseByteSize("3GiB"), std::optional<uint64_t>(3ull << 30));
}

TEST(ByteSizeTest, RejectsBadSizes) {
  for (const char* bad : {"", "MB", "-1", "1.5MB", "10 MB", "10mb", "10TB", "abc", "10MBx"})
    EXPECT_FALSE(ParseByteSize(bad).has_value()) << "'" << bad << "'";
}

TEST(ByteSizeTest, OverflowIsRejected) {
  // 2e10 GB does not fit in 64 bits; wrapping around would silently give a small limit.
  auto huge = ParseByteSize("20000000000GB");
  EXPECT_FALSE(huge.has_value()) << "parsed as " << *huge;
}

// ---- gzip -----------------------------------------------------------------------------------

std::string Gzip(std::string_view data) { return CompressForTests(data, CompressedFormat::kGzip); }
std::string ZlibCompress(std::string_view data) { return CompressForTests(data, CompressedFormat::kZlib); }

std::string RandomText(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char('a' + rng() % 26);
  return s;
}

TEST(GunzipTest, RoundTripsGzipAndZlib) {
  for (size_t n : {size_t(0), size_t(1), size_t(1000), size_t(300'000)}) {
    std::string data = RandomText(n, uint32_t(n));
    auto gz = GunzipLimited(Gzip(data), 1 << 20);
    ASSERT_TRUE(gz.ok()) << gz.status().ToString();
    EXPECT_EQ(*gz, data);
    auto zl = InflateLimited(ZlibCompress(data), 1 << 20, CompressedFormat::kZlib);
    ASSERT_TRUE(zl.ok()) << zl.status().ToString();
    EXPECT_EQ(*zl, data);
  }
}

TEST(GunzipTest, EveryMemberOfAMultiMemberBodyIsRead) {
  // RFC 1952: a gzip file may be several members, one after the other; `cat a.gz b.gz`.
  std::string first = RandomText(70'000, 1), second = RandomText(1000, 2), third = RandomText(5, 3);
  auto whole = GunzipLimited(Gzip(first) + Gzip(second) + Gzip(third), 1 << 20);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(*whole, first + second + third);
  // The limit covers all members together.
  EXPECT_EQ(GunzipLimited(Gzip(first) + Gzip(first), 100'000).status().code(), StatusCode::kTooLarge);
}

TEST(GunzipTest, NothingMayFollowTheLastMember) {
  std::string data = RandomText(3000, 9);
  for (std::string trailer : {std::string("x"), std::string("\x1f"), std::string(64, '\0'), std::string("\x1f\x8bjunk", 6)}) {
    auto gz = GunzipLimited(Gzip(data) + trailer, 1 << 20);
    EXPECT_EQ(gz.status().code(), StatusCode::kInvalidArgument) << trailer.size();
  }
  EXPECT_EQ(InflateLimited(ZlibCompress(data) + "more", 1 << 20, CompressedFormat::kZlib).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(InflateLimited(Gzip(data), 1 << 20, CompressedFormat::kZlib).status().code(), StatusCode::kInvalidArgument)
      << "deflate means zlib, not gzip";
}

TEST(GunzipTest, OutputExactlyAtTheLimitIsAccepted) {
  std::string data = RandomText(5000, 3);
  auto exact = GunzipLimited(Gzip(data), data.size());
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(*exact, data);
  auto below = GunzipLimited(Gzip(data), data.size() - 1);
  ASSERT_FALSE(below.ok());
  EXPECT_EQ(below.status().code(), StatusCode::kTooLarge);
}

TEST(GunzipTest, GarbageIsInvalidArgument) {
  for (std::string garbage : {std::string(), std::string("not gzip at all"), std::string(100, '\xff'),
                              std::string("\x1f\x8b\x08\x00garbage", 12)}) {
    auto result = GunzipLimited(garbage, 1 << 20);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(GunzipTest, TruncatedStreamIsInvalidArgument) {
  std::string gz = Gzip(RandomText(20000, 5));
  for (size_t keep : {size_t(5), size_t(10), gz.size() / 2, gz.size() - 1}) {
    auto result = GunzipLimited(std::string_view(gz).substr(0, keep), 1 << 20);
    ASSERT_FALSE(result.ok()) << keep;
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << keep;
  }
}

TEST(GunzipTest, BombOverTheLimitIsTooLarge) {
  std::string zeros(50u << 20, '\0');  // 50 MiB of zeros compress to about 50 KiB
  std::string bomb = Gzip(zeros);
  zeros.clear();
  zeros.shrink_to_fit();
  EXPECT_LT(bomb.size(), 200u * 1024);
  auto result = GunzipLimited(bomb, 1 << 20);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kTooLarge);
}

// ---- tenants --------------------------------------------------------------------------------

TEST(TenantTest, AcceptsGoodIds) {
  std::vector<std::string> good_ids = {"a", "team-a", "Team_B.prod", "x!y*z'(1)", "0", std::string(150, 'a')};
  for (const auto& good : good_ids)
    EXPECT_TRUE(ValidateTenantId(good).ok()) << good;
  EXPECT_TRUE(ValidateTenantId("...").ok());  // not a path component of its own
}

TEST(TenantTest, RejectsBadIds) {
  std::vector<std::string> bad = {"", ".", "..", "../x", "a/b", "/abs", std::string(151, 'a'), "a b",
                                  "tab\there", "nl\n", std::string("nul\0x", 5), "\x7f", "ü", "a\\b", "a:b"};
  for (const auto& id : bad) {
    Status status = ValidateTenantId(id);
    EXPECT_FALSE(status.ok()) << "'" << id << "'";
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << "'" << id << "'";
  }
}

TEST(TenantTest, ResolveTenant) {
  auto off = ResolveTenant(false, std::nullopt);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, "single-tenant");
  auto off_with_header = ResolveTenant(false, std::string_view("team-a"));
  ASSERT_TRUE(off_with_header.ok());
  EXPECT_EQ(*off_with_header, kSingleTenant);

  auto missing = ResolveTenant(true, std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kUnauthenticated);

  auto good = ResolveTenant(true, std::string_view("team-a"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "team-a");

  auto traversal = ResolveTenant(true, std::string_view("../etc"));
  ASSERT_FALSE(traversal.ok());
  EXPECT_EQ(traversal.status().code(), StatusCode::kInvalidArgument);
  auto empty = ResolveTenant(true, std::string_view(""));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

// ---- metrics --------------------------------------------------------------------------------

TEST(MetricsTest, RendersCountersWithLabels) {
  MetricsRegistry registry;
  Counter& get = registry.GetCounter("http_requests_total", "Requests.", {{"method", "GET"}, {"code", "200"}});
  Counter& post = registry.GetCounter("http_requests_total", "Requests.", {{"method", "POST"}, {"code", "500"}});
  get.Add(3);
  post.Add();
  EXPECT_EQ(&registry.GetCounter("http_requests_total", "Requests.", {{"method", "GET"}, {"code", "200"}}), &get);
  registry.GetGauge("queue_depth", "Depth.").Set(-4);
  std::string text = registry.Render();
  EXPECT_NE(text.find("# HELP http_requests_total Requests.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE http_requests_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("http_requests_total{method=\"GET\",code=\"200\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("http_requests_total{method=\"POST\",code=\"500\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE queue_depth gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("queue_depth -4\n"), std::string::npos) << text;
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(FormatLabels({}), "");
  EXPECT_EQ(FormatLabels({{"a", "x\"y\\z\nw"}}), "{a=\"x\\\"y\\\\z\\nw\"}");
}

TEST(MetricsTest, RendersHistogramBuckets) {
  MetricsRegistry registry;
  Histogram& h = registry.GetHistogram("latency_seconds", "Latency.", {0.5, 1, 2.5}, {{"route", "push"}});
  for (double v : {0.25, 0.5, 0.75, 2.0, 10.0}) h.Observe(v);
  std::string text = registry.Render();
  EXPECT_NE(text.find("# TYPE latency_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"push\",le=\"0.5\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"push\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"push\",le=\"2.5\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"push\",le=\"+Inf\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_sum{route=\"push\"} 13.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_count{route=\"push\"} 5\n"), std::string::npos) << text;

  std::vector<uint64_t> cumulative;
  double sum;
  uint64_t count;
  h.Snapshot(cumulative, sum, count);
  EXPECT_EQ(cumulative, (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_DOUBLE_EQ(sum, 13.5);
  EXPECT_EQ(count, 5u);
}

TEST(MetricsTest, UnlabelledHistogramAndCallbackGauge) {
  MetricsRegistry registry;
  registry.GetHistogram("sizes", "Sizes.", {10}).Observe(3);
  registry.AddCallbackGauge("answer", "The answer.", [] { return 42.0; });
  std::string text = registry.Render();
  EXPECT_NE(text.find("sizes_bucket{le=\"10\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sizes_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sizes_count 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("answer 42\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace tracery

namespace tracery {
namespace {

TEST(Utf8Test, AcceptsWellFormedTextAndRefusesEverythingElse) {
  for (std::string good : {std::string(), std::string("plain ascii over eight bytes long"), std::string("caf\xc3\xa9"),
                           std::string("\xe2\x82\xac"), std::string("\xf0\x9f\x9a\x80"), std::string("\xf4\x8f\xbf\xbf"),
                           std::string("\xed\x9f\xbf"), std::string("0123456\xc3\xa9"), std::string("\0nul\0", 5)})
    EXPECT_TRUE(IsValidUtf8(good)) << HexEncode(good);
  for (std::string bad : {std::string("\xc3"), std::string("\xc0\xaf"), std::string("\xe0\x80\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"), std::string("\xf8\x88\x80\x80\x80"),
                          std::string("\x80"), std::string("abcdefghijklmno\xff"), std::string("abcdefgh\xe2\x82"),
                          std::string("\xe2\x28\xa1")})
    EXPECT_FALSE(IsValidUtf8(bad)) << HexEncode(bad);
}

}  // namespace
}  // namespace tracery
