// Starts and stops a real tracery process for the end-to-end tests.
//
// Every server gets its own temporary root holding `config.yaml` and `data/`, so a test can
// walk the root afterwards and prove nothing was written outside the data directory. Ports
// are picked fresh on every start (including restarts): the tests are about what the server
// keeps on disk, not about rebinding a port that may still be in TIME_WAIT.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const e2eDirectory = path.dirname(fileURLToPath(import.meta.url));
export const repositoryRoot = path.resolve(e2eDirectory, '..', '..');

export function serverBinaryPath() {
  return process.env.TRACERY_BIN || path.join(repositoryRoot, 'build', 'tracery');
}

const READY_TIMEOUT_MS = 20_000;
const GRACEFUL_STOP_TIMEOUT_MS = 10_000;
// Enough of the server's output to explain a failure without flooding the test report.
const LOG_TAIL_BYTES = 64 * 1024;

// Servers that are still running. A test that throws before its teardown, or a runner that
// exits early, must not leave a tracery process behind holding ports and files.
const liveProcesses = new Set();
process.on('exit', () => {
  for (const child of liveProcesses) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export async function pickFreeLoopbackPort() {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address();
  listener.close();
  await once(listener, 'close');
  return port;
}

async function pickDistinctPorts(count) {
  const ports = new Set();
  while (ports.size < count) ports.add(await pickFreeLoopbackPort());
  return [...ports];
}

export function defaultConfig({ dataDir, httpPort, grpcPort, otlpHttpPort }) {
  return {
    server: {
      http_listen_address: '127.0.0.1',
      http_listen_port: httpPort,
    },
    distributor: {
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: `127.0.0.1:${grpcPort}` },
            http: { endpoint: `127.0.0.1:${otlpHttpPort}` },
          },
        },
      },
    },
    ingester: {
      trace_idle_period: '10s',
      max_block_duration: '30m',
      max_block_bytes: 104857600,
    },
    storage: {
      trace: {
        backend: 'local',
        local: { path: path.join(dataDir, 'blocks') },
        wal: { path: path.join(dataDir, 'wal') },
      },
    },
    multitenancy_enabled: false,
    overrides: {
      defaults: {
        ingestion: { rate_limit_bytes: 15000000, burst_size_bytes: 20000000 },
        global: { max_bytes_per_trace: 5000000 },
      },
    },
  };
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// Overrides are merged key by key so a test states only what it changes; a value of
// `undefined` removes the key.
export function mergeConfig(base, overrides) {
  const merged = { ...base };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (value === undefined) delete merged[key];
    else if (isPlainObject(value) && isPlainObject(merged[key])) merged[key] = mergeConfig(merged[key], value);
    else merged[key] = value;
  }
  return merged;
}

function yamlScalar(value) {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  // Quote anything YAML could read as another type or as syntax; JSON strings are valid YAML.
  if (/^[A-Za-z0-9_./:-]+$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value)
      && !/^[0-9.+-]/.test(value)) {
    return value;
  }
  return JSON.stringify(value);
}

// A small YAML writer for nested maps of scalars: the config has no lists, and writing it
// ourselves keeps the exact text (and so the line numbers) under the test's control.
export function toYaml(object, indent = '') {
  let text = '';
  for (const [key, value] of Object.entries(object)) {
    if (isPlainObject(value)) text += `${indent}${key}:\n${toYaml(value, indent + '  ')}`;
    else text += `${indent}${key}: ${yamlScalar(value)}\n`;
  }
  return text;
}

export async function makeTemporaryRoot() {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tracery-e2e-'));
  const dataDir = path.join(root, 'data');
  await mkdir(dataDir);
  return { root, dataDir, configPath: path.join(root, 'config.yaml') };
}

class LogTail {
  constructor() { this.chunks = []; this.size = 0; }
  append(chunk) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > LOG_TAIL_BYTES && this.chunks.length > 1) this.size -= this.chunks.shift().length;
  }
  text() { return Buffer.concat(this.chunks).toString('utf8'); }
}

// Runs the binary with the given arguments until it exits or `timeoutMs` passes; used for
// configs that must be refused at startup.
export async function runToExit(args, { timeoutMs = 10_000 } = {}) {
  const child = spawn(serverBinaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveProcesses.add(child);
  const stdout = new LogTail();
  const stderr = new LogTail();
  child.stdout.on('data', (chunk) => stdout.append(chunk));
  child.stderr.on('data', (chunk) => stderr.append(chunk));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((resolve) => child.on('error', (error) => resolve({ error })));
  let timer;
  const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve({ timedOut: true }), timeoutMs); });
  const outcome = await Promise.race([exited, spawnError, timedOut]);
  clearTimeout(timer);
  if (outcome.timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
  liveProcesses.delete(child);
  if (outcome.error) throw new Error(`could not run ${serverBinaryPath()}: ${outcome.error.message}`);
  return { ...outcome, stdout: stdout.text(), stderr: stderr.text() };
}

// Spawns a long-running child that is killed when the test process exits, sends its output to
// `onOutput`, and polls `readyUrl` until it answers 200. Resolves to { child, exited, state }
// where `state.exit` is set once the child ends; throws with `describe()` (the child's output)
// when it exits early or is not ready in time (it is killed then).
export async function spawnUntilReady({ name, binary, args, spawnOptions = {}, onOutput, readyUrl, timeoutMs, describe }) {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  const state = { exit: null };
  liveProcesses.add(child);
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      liveProcesses.delete(child);
      state.exit = { code, signal };
      resolve(state.exit);
    });
  });
  let spawnError = null;
  child.on('error', (error) => { spawnError = error; });

  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`could not run ${binary}: ${spawnError.message}`);
    if (state.exit) {
      throw new Error(`${name} exited before it was ready (code ${state.exit.code}, signal ${state.exit.signal})\n${describe()}`);
    }
    try {
      const response = await fetch(readyUrl, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return { child, exited, state };
      lastProblem = `GET ${new URL(readyUrl).pathname} answered ${response.status}`;
    } catch (error) {
      lastProblem = `GET ${new URL(readyUrl).pathname} failed: ${error.cause?.code ?? error.message}`;
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  await exited;
  throw new Error(`${name} was not ready within ${timeoutMs} ms (${lastProblem})\n${describe()}`);
}

export class TraceryServer {
  constructor({ root, dataDir, configPath, configOverrides, extraArgs }) {
    this.root = root;
    this.dataDir = dataDir;
    this.configPath = configPath;
    this.configOverrides = configOverrides;
    this.extraArgs = extraArgs;
    this.output = new LogTail();
    this.proc = null;
    this.exit = null;
    this.starts = 0;
  }

  get httpUrl() { return `http://127.0.0.1:${this.httpPort}`; }
  get grpcAddr() { return `127.0.0.1:${this.grpcPort}`; }
  get otlpHttpUrl() { return `http://127.0.0.1:${this.otlpHttpPort}`; }
  get stderr() { return this.output.text(); }
  get running() { return this.proc !== null && this.exit === null; }

  async start() {
    [this.httpPort, this.grpcPort, this.otlpHttpPort] = await pickDistinctPorts(3);
    const config = mergeConfig(defaultConfig(this), this.configOverrides);
    await writeFile(this.configPath, toYaml(config));

    this.starts += 1;
    this.output.append(Buffer.from(`\n----- tracery start #${this.starts} (${serverBinaryPath()}) -----\n`));
    this.exit = null;
    const started = await spawnUntilReady({
      name: 'tracery',
      binary: serverBinaryPath(),
      args: [`-config.file=${this.configPath}`, ...this.extraArgs],
      onOutput: (chunk) => this.output.append(chunk),
      readyUrl: `${this.httpUrl}/ready`,
      timeoutMs: READY_TIMEOUT_MS,
      describe: () => this.stderr,
    });
    this.proc = started.child;
    this.exited = started.exited.then((exit) => { this.exit = exit; return exit; });
    return this;
  }

  // Graceful stop: SIGTERM, then SIGKILL if the process hangs. Returns how it ended.
  async stop() {
    if (!this.running) return this.exit;
    this.proc.kill('SIGTERM');
    let timer;
    const gaveUp = new Promise((resolve) => { timer = setTimeout(() => resolve(null), GRACEFUL_STOP_TIMEOUT_MS); });
    const result = await Promise.race([this.exited, gaveUp]);
    clearTimeout(timer);
    if (result) return { ...result, graceful: true };
    this.output.append(Buffer.from(`\n----- no exit ${GRACEFUL_STOP_TIMEOUT_MS} ms after SIGTERM; sending SIGKILL -----\n`));
    this.proc.kill('SIGKILL');
    return { ...(await this.exited), graceful: false };
  }

  async kill9() {
    if (!this.running) return this.exit;
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  // Stops (gracefully unless told otherwise) and starts again on the same data directory.
  async restart({ hard = false } = {}) {
    if (hard) await this.kill9();
    else await this.stop();
    return this.start();
  }

  async removeFiles() {
    await rm(this.root, { recursive: true, force: true });
  }
}

// `configOverrides` is merged into the default config; `extraArgs` follow -config.file.
export async function startServer({ configOverrides = {}, extraArgs = [] } = {}) {
  const directories = await makeTemporaryRoot();
  const server = new TraceryServer({ ...directories, configOverrides, extraArgs });
  try {
    await server.start();
  } catch (error) {
    await server.kill9();
    throw error;
  }
  return server;
}

// Wires a server into node:test hooks: its output is printed when a test fails, and it is
// killed at the end of the suite. Files are kept after a failure so they can be inspected.
export function reportServerOnFailure(getServer, { afterEach, after }) {
  let anyFailure = false;
  afterEach((context) => {
    if (context.passed) return;
    anyFailure = true;
    const server = getServer();
    if (!server) return;
    console.error(`\n===== tracery output for failed test "${context.name}" (data kept in ${server.root}) =====\n`
      + `${server.stderr}\n===== end of tracery output =====`);
  });
  after(async () => {
    const server = getServer();
    if (!server) return;
    await server.kill9();
    if (!anyFailure) await server.removeFiles();
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Lists every path under `root` (relative, with '/' separators), directories included.
// Symlinks are listed but not followed: a link is itself something the test should see.
export async function listTree(root) {
  const found = [];
  async function visit(relative) {
    const entries = await readdir(path.join(root, relative), { withFileTypes: true });
    for (const entry of entries) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      found.push({ path: child, isDirectory: entry.isDirectory(), isSymlink: entry.isSymbolicLink() });
      if (entry.isDirectory()) await visit(child);
    }
  }
  await visit('');
  return found;
}

// Status, headers and raw body of a request; never throws on an HTTP error status.
//
// A GET that fails before any answer because the pooled keep-alive connection it was given had
// just been closed by the server (idle past the server's 30 s while a test kept node's event
// loop busy, so the close was not seen yet) is sent once more on a new connection, as HTTP
// clients do for idempotent requests. Any other failure, and any answer, is returned as is.
export async function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  let response;
  try {
    response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const closed = ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes(error?.cause?.code);
    if (method !== 'GET' || !closed) throw error;
    response = await fetch(url, { method, headers, signal: AbortSignal.timeout(timeoutMs) });
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body: bytes, text: () => bytes.toString('utf8') };
}

// Sends bytes exactly as given over a fresh TCP connection and returns the HTTP status code
// of the answer (or null if the server closed the connection without one). Used where
// node's HTTP client would refuse to send the request, e.g. control characters in headers.
export async function rawHttpStatus(port, requestBytes, { timeoutMs = 5000 } = {}) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setTimeout(timeoutMs);
  const received = [];
  return new Promise((resolve, reject) => {
    const finish = () => {
      const text = Buffer.concat(received).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve(match ? Number(match[1]) : null);
      socket.destroy();
    };
    socket.on('connect', () => socket.write(requestBytes));
    socket.on('data', (chunk) => {
      received.push(chunk);
      if (Buffer.concat(received).includes('\r\n')) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('timeout', () => reject(new Error(`no answer on port ${port} within ${timeoutMs} ms`)));
    socket.on('error', (error) => (error.code === 'ECONNRESET' ? finish() : reject(error)));
  });
}
