// stalled_senders: the server's memory with many senders that start a large request and stall,
// over both receivers. Starts tracery with its defaults (max_inflight_bytes 512 MiB,
// max_request_bytes 16 MiB), then, one receiver at a time: N connections each announce a
// 15 MB request, send the first MiB of it and send nothing more. Prints what the senders got
// back (429 / RESOURCE_EXHAUSTED at once, or nothing yet), the server's peak and current RSS
// while they stall, and its RSS once they are gone.
//
//   node bench/requests/stalled_senders.mjs [senders=1000]
// (run from the repository root after ./scripts/build.sh; TRACERY_BIN picks another binary)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repository = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const senders = Number(process.argv[2] ?? 1000);
const binary = process.env.TRACERY_BIN ?? path.join(repository, 'build', 'tracery');
const ports = { query: 3392, grpc: 4392, http: 4393 };
const announced = 15_000_000;
const sent = Buffer.alloc(1 << 20, 0x0a); // one buffer, written by every sender
const MiB = 1024 * 1024;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tracery-stalled-'));
fs.writeFileSync(path.join(dataDir, 'config.yaml'), `server:
  http_listen_address: 127.0.0.1
  http_listen_port: ${ports.query}
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:${ports.grpc}
        http:
          endpoint: 127.0.0.1:${ports.http}
storage:
  trace:
    local:
      path: ${dataDir}/blocks
    wal:
      path: ${dataDir}/wal
`);

const server = spawn(binary, [`-config.file=${dataDir}/config.yaml`], { stdio: ['ignore', 'ignore', 'inherit'] });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const memory = () => {
  const status = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return { peak: kib('VmHWM') * 1024, now: kib('VmRSS') * 1024 };
};
const mib = (bytes) => `${(bytes / MiB).toFixed(0)} MiB`;
for (let i = 0; ; i += 1) {
  const ok = await new Promise((resolve) => http.get(`http://127.0.0.1:${ports.query}/ready`, (r) => { r.resume(); resolve(r.statusCode === 200); }).on('error', () => resolve(false)));
  if (ok) break;
  if (i > 100) throw new Error('tracery did not start');
  await sleep(100);
}

// One OTLP/HTTP sender: the head announces `announced` bytes, then one MiB of body.
function httpSender() {
  const socket = net.connect(ports.http, '127.0.0.1');
  const sender = { answer: null, close: () => socket.destroy() };
  let text = '';
  socket.on('data', (chunk) => {
    text += chunk.toString('latin1');
    sender.answer ??= /^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? null;
  });
  socket.on('error', () => {});
  socket.write(`POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${announced}\r\n\r\n`);
  socket.write(sent);
  return sender;
}

// One OTLP/gRPC sender on its own connection: a message prefix announcing `announced` bytes,
// then one MiB of the message.
function grpcSender() {
  const session = http2.connect(`http://127.0.0.1:${ports.grpc}`);
  session.on('error', () => {});
  const sender = { answer: null, close: () => session.destroy() };
  const stream = session.request({
    ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers',
  });
  stream.on('response', (headers) => { sender.answer ??= headers['grpc-status'] === undefined ? null : `grpc-status ${headers['grpc-status']}`; });
  stream.on('error', () => {});
  stream.on('data', () => {});
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(announced, 1);
  stream.write(prefix);
  stream.write(sent);
  return sender;
}

async function phase(name, makeSender) {
  fs.writeFileSync(`/proc/${server.pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
  const before = memory();
  const all = Array.from({ length: senders }, makeSender);
  await sleep(5000);
  const during = memory();
  const answers = {};
  for (const sender of all) answers[sender.answer ?? 'no answer yet'] = (answers[sender.answer ?? 'no answer yet'] ?? 0) + 1;
  for (const sender of all) sender.close();
  await sleep(2000);
  const after = memory();
  console.log(`${name}: ${senders} stalled senders: ${JSON.stringify(answers)}; RSS before ${mib(before.now)}, `
    + `peak ${mib(during.peak)}, while they stall ${mib(during.now)}, 2 s after they closed ${mib(after.now)}`);
}

try {
  await phase('otlp/http', httpSender);
  await phase('otlp/grpc', grpcSender);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  fs.rmSync(dataDir, { recursive: true, force: true });
}
