// Compaction benchmark: writes input blocks with the real BlockWriter to the local-disk object
// store (shop-like spans: a resource per service, HTTP/RPC/DB attributes), with a share of
// traces split across two inputs (one span in both: a repeat to drop) and a few huge traces,
// then runs the real Compactor once and prints its throughput, CPU, peak RSS during the merge
// (VmHWM after clearing it), the most spans it held decoded, bytes per span before and after,
// and checks that every trace is in the output once with its span count (repeats removed).
//
//   build/bench/compaction_bench --traces 100000            (quick: well under a minute)
//   build/bench/compaction_bench                           (3 blocks of 1 M traces: minutes)
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <queue>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/object_store.h"
#include "block/block.h"
#include "common/env.h"
#include "otlp/model.h"
#include "storage/block_list.h"
#include "storage/compactor.h"

using namespace tracery;

namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

TraceId IdOf(uint64_t trace) {
  std::string raw(16, '\0');
  uint64_t hi = SplitMix(trace * 2 + 1), lo = SplitMix(trace * 2 + 2);
  for (int i = 0; i < 8; ++i) {
    raw[i] = char(hi >> (56 - 8 * i));
    raw[8 + i] = char(lo >> (56 - 8 * i));
  }
  return TraceId::FromBytes(raw);
}

// The merge as it was before it streamed, for comparison (--baseline): each input's row group
// decoded into model objects, a trace's parts gathered and de-duplicated as a whole, encoded
// again and added whole. Writes the output block and returns its meta; `peak` gets the most
// spans held decoded.
Result<block::BlockMeta> DecodedMerge(backend::ObjectStore& store, const std::vector<std::shared_ptr<block::BlockReader>>& inputs,
                                      const block::WriterOptions& options, uint64_t& peak) {
  struct Cursor {
    std::shared_ptr<block::BlockReader> block;
    uint32_t row_group = 0;
    std::vector<block::DecodedTrace> traces;
    size_t position = 0;
    uint64_t spans = 0;
    Status Load(uint32_t from) {
      traces.clear();
      position = 0;
      spans = 0;
      for (row_group = from; row_group < block->meta().row_groups; ++row_group) {
        auto read = block->ReadRowGroup(row_group);
        if (!read.ok()) return read.status();
        traces = std::move(read).value();
        if (traces.empty()) continue;
        for (const auto& trace : traces) spans += trace.spans.SpanCount();
        return Status::Ok();
      }
      return Status::Ok();
    }
    bool done() const { return position >= traces.size(); }
    Status Advance() { return ++position < traces.size() ? Status::Ok() : Load(row_group + 1); }
  };
  uint64_t expected = 0;
  for (const auto& input : inputs) expected += input->meta().trace_count;
  auto writer = block::BlockWriter::Create(store, inputs[0]->meta().tenant, inputs[0]->meta().tier, expected, options);
  if (!writer.ok()) return writer.status();
  std::vector<Cursor> cursors(inputs.size());
  using Head = std::pair<TraceId, size_t>;
  auto later = [](const Head& a, const Head& b) { return b < a; };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  for (size_t i = 0; i < inputs.size(); ++i) {
    cursors[i].block = inputs[i];
    TRACERY_RETURN_IF_ERROR(cursors[i].Load(0));
    if (!cursors[i].done()) heads.emplace(cursors[i].traces[0].id, i);
  }
  while (!heads.empty()) {
    const TraceId id = heads.top().first;
    otlp::TracesData merged;
    size_t parts = 0;
    while (!heads.empty() && heads.top().first == id) {
      Cursor& cursor = cursors[heads.top().second];
      heads.pop();
      for (auto& rs : cursor.traces[cursor.position].spans.resource_spans) merged.resource_spans.push_back(std::move(rs));
      ++parts;
      TRACERY_RETURN_IF_ERROR(cursor.Advance());
      if (!cursor.done()) heads.emplace(cursor.traces[cursor.position].id, size_t(&cursor - cursors.data()));
    }
    if (parts > 1) block::DeduplicateSpans(merged);
    uint64_t held = merged.SpanCount();
    for (const auto& cursor : cursors) held += cursor.spans;
    peak = std::max(peak, held);
    TRACERY_RETURN_IF_ERROR((*writer)->AddTrace(id, otlp::EncodeTracesData(merged)));
  }
  return (*writer)->Finish();
}

struct Config {
  uint64_t traces = 1'000'000;  // per block
  int blocks = 3;
  int huge_traces = 4;
  uint64_t huge_spans = 100'000;
  double split_share = 0.05;  // of a block's traces continued in the next block
  uint32_t row_group_spans = 1024;
  uint64_t max_spans_in_memory = 0;  // 0: the compactor's default
  std::string dir = "/tmp/compaction-bench";
  std::string inputs_from;  // copy these blocks instead of writing them
  bool write_only = false, keep = false, baseline = false;
};

// What a trace is: ordinary traces have 1..12 spans; huge ones `huge_spans`.
uint32_t SpanCount(const Config& config, uint64_t trace) {
  if (trace >= uint64_t(config.blocks) * config.traces) return uint32_t(config.huge_spans);
  return 1 + uint32_t(SplitMix(trace ^ 0xabcdef) % 12);
}

// Traces owned by block b: [b*T, (b+1)*T); a share of them continues in block b+1.
bool ContinuesInNextBlock(const Config& config, uint64_t trace) {
  uint64_t block = trace / config.traces;
  if (block + 1 >= uint64_t(config.blocks) || SpanCount(config, trace) < 2) return false;
  return double(SplitMix(trace ^ 0x5151) % 1'000'000) < config.split_share * 1e6;
}

const char* const kServices[] = {"frontend", "cart", "checkout", "payment", "shipping", "currency",
                                 "catalog", "recommendation", "ad", "email", "quote"};
const char* const kRoutes[] = {"/api/cart", "/api/checkout", "/api/products/{id}", "/api/recommendations",
                               "/api/currency", "/api/shipping/quote", "/api/ads", "/api/orders/{id}"};

otlp::KeyValue Text(const char* key, std::string value) {
  otlp::KeyValue kv;
  kv.key = key;
  kv.value.type = otlp::AnyValue::Type::kString;
  kv.value.string_value = std::move(value);
  return kv;
}

otlp::KeyValue Int(const char* key, int64_t value) {
  otlp::KeyValue kv;
  kv.key = key;
  kv.value.type = otlp::AnyValue::Type::kInt;
  kv.value.int_value = value;
  return kv;
}

// The spans [first, last) of a trace, grouped by service as an SDK exports them.
std::string EncodeTrace(uint64_t trace, uint32_t first, uint32_t last, uint32_t count, uint64_t base_nanos) {
  const TraceId id = IdOf(trace);
  const uint64_t seed = SplitMix(trace);
  const uint64_t start = base_nanos + seed % (40ull * 60 * 1'000'000'000);
  otlp::TracesData data;
  std::vector<int> resource_of(std::size(kServices), -1);
  for (uint32_t s = first; s < last; ++s) {
    const uint64_t r = SplitMix(seed + s);
    // Huge traces spread over every service; others over a few.
    const size_t service = s == 0 ? 0 : (count > 64 ? r % std::size(kServices) : (seed >> 8) % 4 + s % 3);
    if (resource_of[service] < 0) {
      resource_of[service] = int(data.resource_spans.size());
      auto& rs = data.resource_spans.emplace_back();
      rs.resource.attributes = {Text("service.name", kServices[service]), Text("service.version", "1.4.2"),
                                Text("host.name", std::string("node-") + char('a' + service)),
                                Text("telemetry.sdk.language", service % 2 ? "go" : "java")};
      rs.scope_spans.emplace_back().scope.name = "io.opentelemetry.http";
      rs.scope_spans.back().scope.version = "1.32.0";
    }
    otlp::Span& span = data.resource_spans[size_t(resource_of[service])].scope_spans[0].spans.emplace_back();
    span.trace_id.assign(id.View());
    span.span_id.assign(8, '\0');
    for (int i = 0; i < 8; ++i) span.span_id[size_t(i)] = char((seed + s + 1) >> (8 * i));
    if (s > 0) {
      const uint64_t parent = s <= 2 ? 0 : r % s;
      span.parent_span_id.assign(8, '\0');
      for (int i = 0; i < 8; ++i) span.parent_span_id[size_t(i)] = char((seed + parent + 1) >> (8 * i));
    }
    const char* route = kRoutes[(seed + s) % std::size(kRoutes)];
    span.kind = s == 0 ? otlp::SpanKind::kServer : otlp::SpanKind(2 + r % 3);
    span.name = (s % 3 == 2 ? std::string("SELECT orders") : std::string(s % 2 ? "GET " : "POST ") + route);
    span.start_time_unix_nano = start + uint64_t(s) * 150'000 + r % 100'000;
    span.end_time_unix_nano = span.start_time_unix_nano + 20'000 + r % 5'000'000;
    span.attributes = {Text("http.request.method", s % 2 ? "GET" : "POST"), Text("http.route", route),
                       Int("http.response.status_code", r % 50 == 0 ? 500 : 200),
                       Text("server.address", std::string(kServices[(service + 1) % std::size(kServices)]) + ":8080"),
                       Int("session.seq", int64_t(r % 100000))};
    if (span.name[0] == 'S') span.attributes.push_back(Text("db.system", "postgresql"));
    if (r % 50 == 0) span.status_code = otlp::StatusCode::kError;
  }
  return otlp::EncodeTracesData(data);
}

struct Part {
  TraceId id;
  uint64_t trace;
  uint32_t first, last;
};

// The parts of block b: its own traces (the first half, with one span more, of those that
// continue in b+1), the second halves continued from b-1, and its share of huge traces (even
// ones whole in block 0; odd ones split between blocks 0 and 1, 10 % of spans in both).
std::vector<Part> PartsOf(const Config& config, int b) {
  std::vector<Part> parts;
  for (uint64_t t = uint64_t(b) * config.traces; t < uint64_t(b + 1) * config.traces; ++t) {
    uint32_t n = SpanCount(config, t);
    parts.push_back({IdOf(t), t, 0, ContinuesInNextBlock(config, t) ? n / 2 + 1 : n});
  }
  if (b > 0)
    for (uint64_t t = uint64_t(b - 1) * config.traces; t < uint64_t(b) * config.traces; ++t)
      if (ContinuesInNextBlock(config, t)) parts.push_back({IdOf(t), t, SpanCount(config, t) / 2, SpanCount(config, t)});
  const uint64_t first_huge = uint64_t(config.blocks) * config.traces;
  for (int h = 0; h < config.huge_traces; ++h) {
    const uint64_t t = first_huge + uint64_t(h);
    const uint32_t n = uint32_t(config.huge_spans);
    const bool split = h % 2 == 1 && config.blocks > 1;
    if (b == 0) parts.push_back({IdOf(t), t, 0, split ? n * 6 / 10 : n});
    if (b == 1 && split) parts.push_back({IdOf(t), t, n / 2, n});
  }
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.id < b.id; });
  return parts;
}

uint64_t StatusKiB(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(std::string(field).size()));
  return 0;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{"Compaction benchmark: writes blocks, merges them once with the real Compactor"};
  app.add_option("--traces", config.traces, "Traces owned by each input block");
  app.add_option("--blocks", config.blocks, "Input blocks (2 or more)")->check(CLI::Range(2, 64));
  app.add_option("--huge-traces", config.huge_traces, "Huge traces (even: in one block; odd: split in two)");
  app.add_option("--huge-spans", config.huge_spans, "Spans of a huge trace");
  app.add_option("--split-share", config.split_share, "Share of a block's traces continued in the next block");
  app.add_option("--row-group-spans", config.row_group_spans, "Row group size of inputs and output");
  app.add_option("--max-spans-in-memory", config.max_spans_in_memory,
                 "compactor.compaction.max_spans_in_memory (0: the default)");
  app.add_option("--dir", config.dir, "Scratch directory (emptied first)");
  app.add_option("--inputs-from", config.inputs_from,
                 "Copy the input blocks from this directory (written by --write-only with the same sizes)");
  app.add_flag("--write-only", config.write_only, "Write the input blocks to --dir and stop");
  app.add_flag("--baseline", config.baseline, "Merge as before streaming (decoded traces), for comparison");
  app.add_flag("--keep", config.keep, "Keep the blocks afterwards");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::remove_all(config.dir);
  std::filesystem::create_directories(config.dir);
  auto store = backend::NewLocalObjectStore(config.dir, DefaultEnv());
  const uint64_t hour = 3600ull * 1'000'000'000;
  const uint64_t now = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count());
  const uint64_t base = (now / hour - 3) * hour;  // a window that has ended
  block::WriterOptions writer;
  writer.row_group_spans = config.row_group_spans;

  // Inputs.
  auto start = std::chrono::steady_clock::now();
  uint64_t otlp_bytes = 0, stored_spans = 0, bytes_in = 0;
  if (!config.inputs_from.empty())
    std::filesystem::copy(config.inputs_from, config.dir, std::filesystem::copy_options::recursive);
  for (int b = 0; b < config.blocks && config.inputs_from.empty(); ++b) {
    std::vector<Part> parts = PartsOf(config, b);
    auto created = block::BlockWriter::Create(*store, "bench", "baseline", parts.size(), writer);
    if (!created.ok()) return std::fprintf(stderr, "%s\n", created.status().ToString().c_str()), 1;
    for (const Part& part : parts) {
      std::string encoded = EncodeTrace(part.trace, part.first, part.last, SpanCount(config, part.trace), base);
      otlp_bytes += encoded.size();
      Status added = (*created)->AddTrace(part.id, encoded);
      if (!added.ok()) return std::fprintf(stderr, "%s\n", added.ToString().c_str()), 1;
    }
    auto meta = (*created)->Finish();
    if (!meta.ok()) return std::fprintf(stderr, "%s\n", meta.status().ToString().c_str()), 1;
    stored_spans += meta->span_count;
    bytes_in += meta->data_bytes + meta->index_bytes;
    std::printf("input %d: %llu traces, %llu spans, %.1f MB, %llu row groups\n", b, (unsigned long long)meta->trace_count,
                (unsigned long long)meta->span_count, double(meta->data_bytes + meta->index_bytes) / 1e6,
                (unsigned long long)meta->row_groups);
  }
  if (config.inputs_from.empty())
    std::printf("inputs written in %.1f s: %llu spans as %.0f B a span of OTLP, %.1f B a span stored\n", Since(start),
                (unsigned long long)stored_spans, double(otlp_bytes) / double(stored_spans),
                double(bytes_in) / double(stored_spans));
  if (config.write_only) return 0;

  storage::BlockList blocks(*store, storage::BlockListOptions{});
  if (Status opened = blocks.Open(); !opened.ok()) return std::fprintf(stderr, "%s\n", opened.ToString().c_str()), 1;
  stored_spans = 0;
  for (const auto& block : blocks.Blocks("bench")) stored_spans += block->meta().span_count;
  storage::CompactorOptions options;
  options.writer = writer;
  options.max_compaction_objects = UINT64_MAX;
  if (config.max_spans_in_memory) options.max_spans_in_memory = config.max_spans_in_memory;
  storage::Compactor compactor(blocks, *store, options);

  // The merge, measured from a cleared high-water mark.
  malloc_trim(0);
  const uint64_t rss_before = StatusKiB("VmRSS:");
  if (std::ofstream clear("/proc/self/clear_refs"); clear) clear << "5";
  const double cpu_start = CpuSeconds();
  start = std::chrono::steady_clock::now();
  storage::CompactionRun run;
  uint64_t peak_spans = 0;
  std::shared_ptr<block::BlockReader> output;
  if (config.baseline) {
    auto inputs = blocks.Blocks("bench");
    auto meta = DecodedMerge(*store, inputs, writer, peak_spans);
    if (!meta.ok()) return std::fprintf(stderr, "%s\n", meta.status().ToString().c_str()), 1;
    auto opened = block::BlockReader::OpenLazily(*store, "bench", meta->block_id);
    if (!opened.ok()) return std::fprintf(stderr, "%s\n", opened.status().ToString().c_str()), 1;
    output = std::move(opened).value();
    if (!blocks.Replace(output, inputs)) return std::fprintf(stderr, "the inputs left the list\n"), 1;
    run.compactions = 1;
    run.blocks_in = inputs.size();
    for (const auto& input : inputs) run.bytes_in += input->meta().data_bytes + input->meta().index_bytes;
    run.bytes_out = meta->data_bytes + meta->index_bytes;
  } else {
    run = compactor.RunOnce();
    peak_spans = compactor.peak_decoded_spans();
  }
  const double wall = Since(start), cpu = CpuSeconds() - cpu_start;
  const uint64_t peak = StatusKiB("VmHWM:");
  if (run.left_for_memory) {
    std::printf("%llu blocks left unmerged (their largest row group alone passes max_spans_in_memory); %llu "
                "compactions of %llu blocks, %.2f s CPU; peak RSS %.1f MiB (%.1f before), peak %llu spans held\n",
                (unsigned long long)run.left_for_memory, (unsigned long long)run.compactions,
                (unsigned long long)run.blocks_in, cpu, double(peak) / 1024, double(rss_before) / 1024,
                (unsigned long long)peak_spans);
    if (!config.keep) std::filesystem::remove_all(config.dir);
    return 0;
  }
  if (run.compactions != 1 || run.failed) {
    std::fprintf(stderr, "expected one compaction, got %llu (%llu failed)\n", (unsigned long long)run.compactions,
                 (unsigned long long)run.failed);
    return 1;
  }
  if (!output) output = blocks.Blocks("bench").at(0);
  const block::BlockMeta& out = output->meta();
  std::printf("%s: %llu blocks, %.1f MB in, %.1f MB out, %.2f s wall, %.2f s CPU\n",
              config.baseline ? "decoded merge (baseline)" : "compaction", (unsigned long long)run.blocks_in,
              double(run.bytes_in) / 1e6, double(run.bytes_out) / 1e6, wall, cpu);
  std::printf("  %.1f MB/s of compressed input (%.1f per CPU-second), %.0f k spans/s in (%.0f k per CPU-second)\n",
              double(run.bytes_in) / 1e6 / wall, double(run.bytes_in) / 1e6 / cpu, double(stored_spans) / wall / 1e3,
              double(stored_spans) / cpu / 1e3);
  std::printf("  peak RSS %.1f MiB (%.1f MiB before the merge: +%.1f), peak %llu spans held decoded\n", double(peak) / 1024,
              double(rss_before) / 1024, double(peak - std::min(peak, rss_before)) / 1024,
              (unsigned long long)peak_spans);
  std::printf("  bytes a span: %.1f before, %.1f after\n", double(run.bytes_in) / double(stored_spans),
              double(run.bytes_out) / double(out.span_count));

  // Every trace once, with its spans (repeats removed).
  std::vector<std::pair<TraceId, uint32_t>> expected;
  for (uint64_t t = 0; t < uint64_t(config.blocks) * config.traces + uint64_t(config.huge_traces); ++t)
    expected.emplace_back(IdOf(t), SpanCount(config, t));
  std::sort(expected.begin(), expected.end());
  uint64_t expected_spans = 0;
  for (const auto& [id, spans] : expected) expected_spans += spans;
  size_t next = 0;
  uint64_t mismatches = 0;
  for (uint32_t rg = 0; rg < out.row_groups; ++rg) {
    auto traces = output->ListTraces(rg);
    if (!traces.ok()) return std::fprintf(stderr, "%s\n", traces.status().ToString().c_str()), 1;
    for (const block::TraceEntry& entry : *traces) {
      if (next >= expected.size() || entry.id != expected[next].first || entry.span_count != expected[next].second)
        ++mismatches;
      ++next;
    }
  }
  bool huge_ok = true;
  for (int h = 0; h < config.huge_traces; ++h) {
    const uint64_t t = uint64_t(config.blocks) * config.traces + uint64_t(h);
    otlp::TracesData trace;
    bool found = false;
    Status read = blocks.CollectTrace("bench", IdOf(t), storage::TimeRange{}, trace, found);
    huge_ok = huge_ok && read.ok() && found && trace.SpanCount() == SpanCount(config, t);
  }
  const bool ok = mismatches == 0 && next == expected.size() && out.trace_count == expected.size() &&
                  out.span_count == expected_spans && blocks.BlockCount() == 1 && huge_ok;
  std::printf("check: %llu traces and %llu spans out, %zu and %llu expected, %llu mismatched, huge traces read back "
              "whole: %s -> %s\n",
              (unsigned long long)out.trace_count, (unsigned long long)out.span_count, expected.size(),
              (unsigned long long)expected_spans, (unsigned long long)mismatches, huge_ok ? "yes" : "no",
              ok ? "OK" : "FAILED");
  if (!config.keep) std::filesystem::remove_all(config.dir);
  return ok ? 0 : 1;
}
