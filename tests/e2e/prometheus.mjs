// Runs a real Prometheus (the Debian build, 2.42) next to tracery for the generator tests.
//
// Each instance gets its own temporary directory (config and TSDB) and a loopback port, and
// is started with exemplar storage and the remote-write receiver, as the seed article asks.
// The config always carries the seed's `storage.exemplars.max_exemplars`; a test adds scrape
// jobs or rule files as it needs them.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bytesField, varintField } from './protowire.mjs';
import { httpRequest, pickFreeLoopbackPort, spawnUntilReady } from './harness.mjs';

export function prometheusBinaryPath() {
  return process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';
}

const READY_TIMEOUT_MS = 30_000;
const LOG_TAIL_CHARACTERS = 32 * 1024;


// The Prometheus config as text. Scrape jobs are [{ name, target, metricsPath }] with a 1 s
// interval, so a test sees a scraped value within a few seconds.
export function prometheusConfigText({ scrapeJobs = [], ruleFiles = [] } = {}) {
  let text = 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n';
  // From the seed article (shared/seed/configs/prometheus.yml).
  text += 'storage:\n  exemplars:\n    max_exemplars: 100000\n';
  if (ruleFiles.length) {
    text += 'rule_files:\n';
    for (const file of ruleFiles) text += `  - ${JSON.stringify(file)}\n`;
  }
  if (scrapeJobs.length) {
    text += 'scrape_configs:\n';
    for (const job of scrapeJobs) {
      text += `  - job_name: ${JSON.stringify(job.name)}\n`;
      text += '    scrape_interval: 1s\n    scrape_timeout: 1s\n';
      text += `    metrics_path: ${JSON.stringify(job.metricsPath ?? '/metrics')}\n`;
      text += `    static_configs:\n      - targets: [${JSON.stringify(job.target)}]\n`;
    }
  }
  return text;
}

export class PrometheusServer {
  constructor({ port, scrapeJobs, ruleFiles }) {
    this.port = port;
    this.scrapeJobs = scrapeJobs;
    this.ruleFiles = ruleFiles;
    this.log = '';
    this.proc = null;
    this.exit = null;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get remoteWriteUrl() { return `${this.url}/api/v1/write`; }
  get running() { return this.proc !== null && this.exit === null; }

  async start() {
    this.root = await mkdtemp(path.join(os.tmpdir(), 'tracery-e2e-prometheus-'));
    const configPath = path.join(this.root, 'prometheus.yml');
    await writeFile(configPath, prometheusConfigText({ scrapeJobs: this.scrapeJobs, ruleFiles: this.ruleFiles }));
    this.exit = null;
    const started = await spawnUntilReady({
      name: 'prometheus',
      binary: prometheusBinaryPath(),
      args: [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${path.join(this.root, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--enable-feature=exemplar-storage',
        '--web.enable-remote-write-receiver',
      ],
      spawnOptions: { cwd: this.root },
      onOutput: (chunk) => { this.log = (this.log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARACTERS); },
      readyUrl: `${this.url}/-/ready`,
      timeoutMs: READY_TIMEOUT_MS,
      describe: () => this.log,
    }).catch(async (error) => {
      await rm(this.root, { recursive: true, force: true });
      throw error;
    });
    this.proc = started.child;
    this.exited = started.exited.then((exit) => { this.exit = exit; return exit; });
    return this;
  }

  async stop() {
    if (this.running) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }

  // GET on the HTTP API; returns `data` of a success answer and throws with the answer
  // otherwise, so a failing PromQL shows Prometheus's own error.
  async api(pathAndQuery) {
    const response = await httpRequest(`${this.url}${pathAndQuery}`);
    let body;
    try {
      body = JSON.parse(response.text());
    } catch {
      throw new Error(`GET ${pathAndQuery} answered ${response.status} with non-JSON: ${response.text().slice(0, 300)}`);
    }
    if (response.status !== 200 || body.status !== 'success') {
      throw new Error(`GET ${pathAndQuery} answered ${response.status}: ${response.text().slice(0, 500)}`);
    }
    return body.data;
  }

  // Instant query; returns the result vector as [{ metric, value: number }].
  async query(promql, { time } = {}) {
    const parameters = new URLSearchParams({ query: promql });
    if (time !== undefined) parameters.set('time', String(time));
    const data = await this.api(`/api/v1/query?${parameters}`);
    if (data.resultType === 'scalar') return [{ metric: {}, value: Number(data.result[1]) }];
    if (data.resultType !== 'vector') throw new Error(`${promql}: expected a vector, got ${data.resultType}`);
    return data.result.map((sample) => ({ metric: sample.metric, value: Number(sample.value[1]) }));
  }

  // [{ seriesLabels, exemplars: [{ labels, value: number, timestamp }] }]; times in seconds.
  async queryExemplars(promql, start, end) {
    const parameters = new URLSearchParams({ query: promql, start: String(start), end: String(end) });
    const data = await this.api(`/api/v1/query_exemplars?${parameters}`);
    return (data ?? []).map((entry) => ({
      seriesLabels: entry.seriesLabels,
      exemplars: entry.exemplars.map((exemplar) => ({ ...exemplar, value: Number(exemplar.value) })),
    }));
  }

  async series(match, { start, end } = {}) {
    const parameters = new URLSearchParams();
    parameters.append('match[]', match);
    if (start !== undefined) parameters.set('start', String(start));
    if (end !== undefined) parameters.set('end', String(end));
    return this.api(`/api/v1/series?${parameters}`);
  }
}

// `port` may be given to start on a port chosen earlier (a tracery already writing to it).
export async function startPrometheus({ port, scrapeJobs = [], ruleFiles = [] } = {}) {
  const server = new PrometheusServer({ port: port ?? await pickFreeLoopbackPort(), scrapeJobs, ruleFiles });
  await server.start();
  return server;
}

// ---------------------------------------------------------------------------------------
// A minimal remote-write client, so a test can prove this Prometheus stores what it is sent
// (samples and exemplars) independently of tracery. Message numbers are from
// prometheus/prompb/types.proto and remote.proto.

function doubleField(number, value) {
  const bytes = Buffer.alloc(9);
  bytes[0] = (number << 3) | 1; // wire type 1: 64-bit
  bytes.writeDoubleLE(value, 1);
  return bytes;
}

const labelsFields = (number, labels) => Object.entries(labels)
  .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  .map(([name, value]) => bytesField(number, Buffer.concat([bytesField(1, name), bytesField(2, value)])));

// series: [{ labels, samples: [{ value, timestampMs }], exemplars: [{ labels, value, timestampMs }] }]
export function encodeWriteRequest(series) {
  return Buffer.concat(series.map((one) => bytesField(1, Buffer.concat([
    ...labelsFields(1, one.labels),
    ...(one.samples ?? []).map((sample) => bytesField(2, Buffer.concat([
      doubleField(1, sample.value), varintField(2, sample.timestampMs)]))),
    ...(one.exemplars ?? []).map((exemplar) => bytesField(3, Buffer.concat([
      ...labelsFields(1, exemplar.labels), doubleField(2, exemplar.value), varintField(3, exemplar.timestampMs)]))),
  ]))));
}

// Snappy's block format with literals only: valid input for any decoder, no compression.
export function snappyLiteralBlock(data) {
  const parts = [];
  let length = data.length;
  const header = [];
  do {
    header.push((length & 0x7f) | (length > 0x7f ? 0x80 : 0));
    length >>>= 7;
  } while (length > 0);
  parts.push(Buffer.from(header));
  for (let offset = 0; offset < data.length; offset += 65536) {
    const chunk = data.subarray(offset, offset + 65536);
    const tag = Buffer.alloc(3);
    tag[0] = 61 << 2; // literal, length-1 in the next two bytes
    tag.writeUInt16LE(chunk.length - 1, 1);
    parts.push(tag, chunk);
  }
  return Buffer.concat(parts);
}

export async function remoteWrite(url, series) {
  return httpRequest(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-protobuf',
      'Content-Encoding': 'snappy',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
    },
    body: snappyLiteralBlock(encodeWriteRequest(series)),
  });
}
