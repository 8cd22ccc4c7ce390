// pipeline_bench: Google Benchmark micro-benchmarks of the ingest and storage stages on the
// load generator's realistic requests: validate-and-split a request, write the WAL record
// framing, cut a block (columns + zstd), and read one trace back from a block. Each reports
// items (spans) per second on one core, so a change to a stage shows in its own figure.
#include <benchmark/benchmark.h>

#include <ctime>
#include <map>
#include <memory>

#include "backend/object_store.h"
#include "block/block.h"
#include "common/crc32c.h"
#include "common/temp_dir_for_tests.h"
#include "loadgen/request_pool.h"
#include "otlp/split.h"

namespace {

const tracery::bench::RequestPool& Pool() {
  static const tracery::bench::RequestPool pool = [] {
    tracery::bench::PoolOptions options;
    options.request_count = 200;
    tracery::bench::RequestPool built;
    std::string error;
    if (!tracery::bench::BuildRequestPool(options, uint64_t(std::time(nullptr)) * 1'000'000'000ull, built, error))
      std::abort();
    return built;
  }();
  return pool;
}

// Every trace of the pool, its fragments joined, sorted by ID: what a block cut receives.
struct Traces {
  std::vector<std::pair<tracery::TraceId, std::string>> encoded;
  uint64_t spans = 0;
};
const Traces& PoolTraces() {
  static const Traces traces = [] {
    std::map<tracery::TraceId, std::string> by_id;
    Traces t;
    for (const auto& request : Pool().requests) {
      tracery::otlp::SplitRequest split;
      if (!tracery::otlp::SplitByTrace(request.encoded, split).ok()) std::abort();
      for (auto& f : split.fragments) by_id[f.trace_id] += f.bytes;
      t.spans += split.span_count;
    }
    for (auto& [id, bytes] : by_id) t.encoded.emplace_back(id, std::move(bytes));
    return t;
  }();
  return traces;
}

void BM_SplitByTrace(benchmark::State& state) {
  const auto& pool = Pool();
  tracery::otlp::SplitRequest split;
  size_t i = 0;
  uint64_t spans = 0, bytes = 0;
  for (auto _ : state) {
    const auto& request = pool.requests[i++ % pool.requests.size()];
    if (!tracery::otlp::SplitByTrace(request.encoded, split).ok()) state.SkipWithError("split failed");
    spans += split.span_count;
    bytes += request.encoded.size();
  }
  state.SetItemsProcessed(int64_t(spans));
  state.SetBytesProcessed(int64_t(bytes));
}
BENCHMARK(BM_SplitByTrace);

void BM_Crc32c(benchmark::State& state) {
  const std::string& data = Pool().requests[0].encoded;
  for (auto _ : state) benchmark::DoNotOptimize(tracery::Crc32c(data));
  state.SetBytesProcessed(int64_t(state.iterations() * data.size()));
}
BENCHMARK(BM_Crc32c);

void BM_CutBlock(benchmark::State& state) {
  const Traces& traces = PoolTraces();
  std::vector<tracery::block::TraceInput> inputs;
  for (const auto& [id, bytes] : traces.encoded) inputs.push_back({id, bytes});
  tracery::TempDir dir("tracery-pipeline-bench");
  auto store = tracery::backend::NewLocalObjectStore(dir.path(), ::tracery::DefaultEnv());
  tracery::block::WriterOptions options;
  uint64_t written = 0;
  for (auto _ : state) {
    auto meta = tracery::block::WriteBlock(*store, "bench", "sampled", inputs, options);
    if (!meta.ok()) state.SkipWithError(meta.status().ToString().c_str());
    else written = meta->data_bytes + meta->index_bytes;
  }
  state.SetItemsProcessed(int64_t(state.iterations() * traces.spans));
  state.counters["bytes_per_span"] = double(written) / double(traces.spans);
}
BENCHMARK(BM_CutBlock)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_FindTraceInBlock(benchmark::State& state) {
  const Traces& traces = PoolTraces();
  std::vector<tracery::block::TraceInput> inputs;
  for (const auto& [id, bytes] : traces.encoded) inputs.push_back({id, bytes});
  tracery::TempDir dir("tracery-pipeline-bench");
  auto store = tracery::backend::NewLocalObjectStore(dir.path(), ::tracery::DefaultEnv());
  auto meta = tracery::block::WriteBlock(*store, "bench", "sampled", inputs, tracery::block::WriterOptions());
  auto reader = tracery::block::BlockReader::Open(*store, "bench", meta->block_id);
  if (!reader.ok()) {
    state.SkipWithError("open failed");
    return;
  }
  size_t i = 0;
  for (auto _ : state) {
    auto found = (*reader)->FindTrace(inputs[(i++ * 7919) % inputs.size()].id);
    if (!found.ok() || !found->has_value()) state.SkipWithError("trace not found");
  }
}
BENCHMARK(BM_FindTraceInBlock)->Unit(benchmark::kMicrosecond);

// The full scan of a search that matches nothing, `{ span.http.response.status_code = 999 }`:
// every span's value of one common attribute is checked on the row groups' columns (already
// in memory: what is timed is the filter, not the object store). The argument is the block
// format version: 1 reads the generic attribute stream, 2 the key's dedicated column.
void BM_ScanForAbsentStatusCode(benchmark::State& state) {
  const Traces& traces = PoolTraces();
  std::vector<tracery::block::TraceInput> inputs;
  for (const auto& [id, bytes] : traces.encoded) inputs.push_back({id, bytes});
  tracery::TempDir dir("tracery-pipeline-bench");
  auto store = tracery::backend::NewLocalObjectStore(dir.path(), ::tracery::DefaultEnv());
  tracery::block::WriterOptions options;
  options.format_version = uint32_t(state.range(0));
  auto meta = tracery::block::WriteBlock(*store, "bench", "sampled", inputs, options);
  if (!meta.ok()) {
    state.SkipWithError(meta.status().ToString().c_str());
    return;
  }
  auto reader = tracery::block::BlockReader::Open(*store, "bench", meta->block_id);
  auto data = store->Read("bench/" + meta->block_id + "/data");
  if (!reader.ok() || !data.ok()) {
    state.SkipWithError("block does not read back");
    return;
  }
  std::vector<std::string_view> row_groups;
  for (const auto& rg : (*reader)->row_groups()) row_groups.push_back(std::string_view(*data).substr(rg.offset, rg.size));
  tracery::block::SpanCondition condition;
  condition.field = tracery::block::SpanCondition::Field::kSpanAttribute;
  condition.key = "http.response.status_code";
  condition.type = tracery::block::SpanCondition::Type::kInt;
  condition.int_value = 999;
  const tracery::block::SpanFilter filter{{condition}};
  auto visit = [](const tracery::TraceId&, const std::vector<tracery::block::DecodedSpan>&, size_t,
                  const tracery::block::RowGroupTables&) { return true; };
  uint64_t checked = 0;
  for (auto _ : state) {
    for (std::string_view row_group : row_groups)
      if (!tracery::block::ScanRowGroupProjected(row_group, filter, tracery::block::Projection{}, visit, &checked).ok())
        state.SkipWithError("scan failed");
  }
  state.SetItemsProcessed(int64_t(checked));
  state.counters["bytes_per_span"] = double(meta->data_bytes) / double(meta->span_count);
}
BENCHMARK(BM_ScanForAbsentStatusCode)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
