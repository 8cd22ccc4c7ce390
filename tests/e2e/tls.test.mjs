// TLS and mutual TLS on the OTLP receivers (gRPC and HTTP) and the query API, with the
// OpenTelemetry JS SDK's exporters and certificates this test makes with `openssl`: traces
// sent over TLS are read back over https; plaintext to a TLS port, a missing client
// certificate and one from another CA are refused while the server stays up; a certificate
// replaced on disk is served to new connections (a broken replacement keeps the old one);
// Tempo's streaming gRPC API on the query port works over TLS (ALPN h2); a bad certificate
// stops the start with the file's name. docs/config.md "TLS" describes the keys.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, copyFile, rename } from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { context, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtobufHttpTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonHttpTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  pickFreeLoopbackPort, makeTemporaryRoot, toYaml, serverBinaryPath, runToExit, sleep, repositoryRoot,
} from './harness.mjs';

// ---- certificates ---------------------------------------------------------------------

let certDir;
const certs = {};

function openssl(...args) {
  execFileSync('openssl', args, { cwd: certDir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// An EC key and a certificate signed by `ca` (or self-signed when ca is null).
function makeCertificate(name, { ca, subject, extensions }) {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  if (!ca) {
    openssl('req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    return;
  }
  execFileSync('sh', ['-c', `printf '%s\\n' ${extensions.map((e) => `'${e}'`).join(' ')} > ${name}.ext`], { cwd: certDir });
  openssl('req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

async function makeCertificates() {
  certDir = await mkdtemp(path.join(os.tmpdir(), 'tracery-tls-'));
  const serverExtensions = ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth'];
  const clientExtensions = ['extendedKeyUsage=clientAuth'];
  makeCertificate('ca', { subject: '/CN=tracery e2e CA' });
  makeCertificate('other-ca', { subject: '/CN=some other CA' });
  makeCertificate('server', { ca: 'ca', subject: '/CN=tracery-server', extensions: serverExtensions });
  makeCertificate('server2', { ca: 'ca', subject: '/CN=tracery-server-renewed', extensions: serverExtensions });
  makeCertificate('client', { ca: 'ca', subject: '/CN=tracery-client', extensions: clientExtensions });
  makeCertificate('rogue-client', { ca: 'other-ca', subject: '/CN=rogue-client', extensions: clientExtensions });
  for (const name of ['ca', 'server', 'server2', 'client', 'rogue-client']) {
    certs[name] = {
      crt: path.join(certDir, `${name}.crt`),
      key: path.join(certDir, `${name}.key`),
      pem: await readFile(path.join(certDir, `${name}.crt`)),
      keyPem: await readFile(path.join(certDir, `${name}.key`)),
    };
  }
}

// ---- a tracery process whose query API speaks https -------------------------------------

const children = new Set();
process.on('exit', () => { for (const child of children) child.kill('SIGKILL'); });

// GET/POST over https (or http when `plain`), with the test CA and optional client identity.
function request(port, pathname, { method = 'GET', body, headers = {}, client, plain = false, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1', port, path: pathname, method, headers, agent: false, timeout: timeoutMs,
      ...(plain ? {} : { ca: certs.ca.pem, ...(client ? { cert: certs[client].pem, key: certs[client].keyPem } : {}) }),
    };
    const req = (plain ? http : https).request(options, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function startTlsServer(makeConfig, { client } = {}) {
  const { root, dataDir, configPath } = await makeTemporaryRoot();
  const ports = { http: await pickFreeLoopbackPort(), grpc: await pickFreeLoopbackPort(), otlpHttp: await pickFreeLoopbackPort() };
  await writeFile(configPath, toYaml(makeConfig({ dataDir, ports })));
  const child = spawn(serverBinaryPath(), [`-config.file=${configPath}`, '-log.level=debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => child.on('exit', (code) => { children.delete(child); resolve(code); }));
  const server = { root, ports, child, exited, get output() { return output; } };
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(100)) {
    if (!children.has(child)) throw new Error(`tracery exited before it was ready:\n${output}`);
    try {
      if ((await request(ports.http, '/ready', { client, timeoutMs: 1000 })).status === 200) return server;
    } catch { /* not listening yet */ }
  }
  child.kill('SIGKILL');
  throw new Error(`tracery was not ready over https:\n${output}`);
}

async function stopServer(server) {
  if (!server) return;
  server.child.kill('SIGTERM');
  await server.exited;
  await rm(server.root, { recursive: true, force: true });
}

function tlsConfig({ dataDir, ports }, { mutual }) {
  const serverTls = { cert_file: certs.server.crt, key_file: certs.server.key };
  const receiverTls = mutual ? { ...serverTls, client_ca_file: certs.ca.crt } : serverTls;
  return {
    server: {
      http_listen_address: '127.0.0.1',
      http_listen_port: ports.http,
      http_tls_config: mutual
        ? { ...serverTls, client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: certs.ca.crt }
        : serverTls,
      tls_min_version: 'VersionTLS12',
    },
    stream_over_http_enabled: true,
    distributor: {
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: `127.0.0.1:${ports.grpc}`, tls: receiverTls },
            http: { endpoint: `127.0.0.1:${ports.otlpHttp}`, tls: { ...receiverTls, reload_interval: '1s' } },
          },
        },
      },
    },
    storage: { trace: { backend: 'local', local: { path: path.join(dataDir, 'blocks') }, wal: { path: path.join(dataDir, 'wal') } } },
  };
}

// ---- sending with the SDK ---------------------------------------------------------------

// Two finished spans of one new trace, made by the SDK.
async function makeSpans(label) {
  const captured = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `tls-${label}` }),
    spanProcessors: [new SimpleSpanProcessor(captured)],
  });
  const tracer = provider.getTracer('e2e.tls');
  const parent = tracer.startSpan(`parent ${label}`);
  tracer.startSpan(`child ${label}`, {}, trace.setSpan(context.active(), parent)).end();
  parent.end();
  await provider.forceFlush();
  return captured.getFinishedSpans();
}

function exportSpans(exporter, spans) {
  return new Promise((resolve) => exporter.export(spans, (result) => resolve(result)))
    .finally(() => exporter.shutdown().catch(() => {}));
}

const grpcCredentials = (client) => (client
  ? grpc.credentials.createSsl(certs.ca.pem, certs[client].keyPem, certs[client].pem)
  : grpc.credentials.createSsl(certs.ca.pem));
const agentOptions = (client) => ({ ca: certs.ca.pem, ...(client ? { cert: certs[client].pem, key: certs[client].keyPem } : {}) });

const exporters = {
  grpc: (server, client) => new GrpcTraceExporter({
    url: `https://127.0.0.1:${server.ports.grpc}`, credentials: grpcCredentials(client), timeoutMillis: 3000,
  }),
  'http/protobuf': (server, client) => new ProtobufHttpTraceExporter({
    url: `https://127.0.0.1:${server.ports.otlpHttp}/v1/traces`, httpAgentOptions: agentOptions(client), timeoutMillis: 3000,
  }),
  'http/json': (server, client) => new JsonHttpTraceExporter({
    url: `https://127.0.0.1:${server.ports.otlpHttp}/v1/traces`, httpAgentOptions: agentOptions(client), timeoutMillis: 3000,
  }),
};

// Reads the trace back over https until both spans are there.
async function assertTraceReadable(server, spans, client) {
  const traceId = spans[0].spanContext().traceId;
  let last;
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(100)) {
    last = await request(server.ports.http, `/api/traces/${traceId}`, { client, headers: { Accept: 'application/json' } });
    if (last.status === 200) {
      const names = JSON.parse(last.text).batches.flatMap((b) => b.scopeSpans.flatMap((s) => s.spans.map((span) => span.name)));
      if (names.length === spans.length) {
        assert.deepEqual(names.sort(), spans.map((span) => span.name).sort());
        return;
      }
    }
  }
  assert.fail(`trace ${traceId} not readable over https: ${last?.status} ${last?.text}`);
}

// The certificate a new TLS connection to `port` is served (its subject CN); null if refused.
function servedCertificate(port, { alpn } = {}) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: certs.ca.pem, ALPNProtocols: alpn }, () => {
      const cn = socket.getPeerCertificate().subject?.CN ?? null;
      socket.destroy();
      resolve(cn);
    });
    socket.on('error', () => resolve(null));
  });
}

// A raw plaintext HTTP request to a TLS port: what comes back, or the socket error.
function plaintextRequest(port) {
  return request(port, '/ready', { plain: true }).then((r) => `${r.status} ${r.text.trim()}`, (e) => `error: ${e.code ?? e.message}`);
}

// ---- the tests --------------------------------------------------------------------------

describe('TLS', () => {
  let server;
  before(async () => {
    await makeCertificates();
    server = await startTlsServer((paths) => tlsConfig(paths, { mutual: false }));
  });
  after(async () => { await stopServer(server); });

  for (const transport of Object.keys(exporters)) {
    it(`the SDK's ${transport} exporter sends over TLS and the trace is read back over https`, async () => {
      const spans = await makeSpans(`tls-${transport}`);
      const result = await exportSpans(exporters[transport](server), spans);
      assert.equal(result.code, ExportResultCode.SUCCESS, `export failed: ${result.error?.message}`);
      await assertTraceReadable(server, spans);
    });
  }

  it('refuses plaintext on every TLS port and stays up', async () => {
    for (const port of [server.ports.http, server.ports.otlpHttp]) {
      const answer = await plaintextRequest(port);
      assert.match(answer, /^400 Client sent an HTTP request to an HTTPS server/, `plaintext to :${port}`);
    }
    const spans = await makeSpans('plaintext-grpc');
    const insecure = new GrpcTraceExporter({ url: `http://127.0.0.1:${server.ports.grpc}`, timeoutMillis: 2000 });
    const result = await exportSpans(insecure, spans);
    assert.equal(result.code, ExportResultCode.FAILED, 'plaintext gRPC export to a TLS port must fail');
    assert.equal((await request(server.ports.http, '/ready')).status, 200, 'the server is still up');
    const metrics = await request(server.ports.http, '/metrics');
    assert.match(metrics.text, /^tracery_tls_handshakes_failed [1-9]/m);
  });

  it('serves Tempo\'s streaming gRPC API on the query port over TLS (ALPN h2)', async () => {
    const spans = await makeSpans('streaming');
    assert.equal((await exportSpans(exporters.grpc(server), spans)).code, ExportResultCode.SUCCESS);
    await assertTraceReadable(server, spans);
    const definition = protoLoader.loadSync('tempopb/tempo.proto', {
      includeDirs: [path.join(repositoryRoot, 'src/query/proto'), path.join(repositoryRoot, 'src/otlp/proto')],
      keepCase: false, longs: String, enums: String, defaults: false, oneofs: false,
    });
    const { StreamingQuerier } = grpc.loadPackageDefinition(definition).tempopb;
    const client = new StreamingQuerier(`127.0.0.1:${server.ports.http}`, grpc.credentials.createSsl(certs.ca.pem));
    try {
      const now = Math.floor(Date.now() / 1000);
      const messages = await new Promise((resolve, reject) => {
        const got = [];
        const call = client.Search({ Query: '{ resource.service.name = "tls-streaming" }', Limit: 10, start: now - 3600, end: now + 60 },
          new grpc.Metadata(), { deadline: Date.now() + 10_000 });
        call.on('data', (message) => got.push(message));
        call.on('error', reject);
        call.on('end', () => resolve(got));
      });
      const traceIds = new Set(messages.flatMap((m) => (m.traces ?? []).map((t) => t.traceID)));
      assert.ok(traceIds.has(spans[0].spanContext().traceId.replace(/^0+/, '')) || traceIds.has(spans[0].spanContext().traceId),
        `streamed search found ${[...traceIds].join(', ')}`);
    } finally {
      client.close();
    }
  });

  it('serves a certificate replaced on disk to new connections, and keeps it when the next one is broken', async () => {
    assert.equal(await servedCertificate(server.ports.http), 'tracery-server');
    assert.equal(await servedCertificate(server.ports.otlpHttp), 'tracery-server');
    assert.equal(await servedCertificate(server.ports.grpc, { alpn: ['h2'] }), 'tracery-server');
    // Replaced as tools do it: new files renamed over the old ones (key first, then cert).
    for (const [from, to] of [[certs.server2.key, certs.server.key], [certs.server2.crt, certs.server.crt]]) {
      await copyFile(from, `${to}.new`);
      await rename(`${to}.new`, to);
    }
    const waitFor = async (port, expected, alpn) => {
      let seen;
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(250)) {
        seen = await servedCertificate(port, { alpn });
        if (seen === expected) return;
      }
      assert.fail(`port ${port} still serves ${seen}, not ${expected}`);
    };
    await waitFor(server.ports.otlpHttp, 'tracery-server-renewed');
    await waitFor(server.ports.http, 'tracery-server-renewed');
    await waitFor(server.ports.grpc, 'tracery-server-renewed', ['h2']);
    // A broken certificate file: logged, and the HTTP listeners keep serving the last good
    // certificate. gRPC 1.51's file watcher drops its credentials instead (handshakes fail
    // until the file is good again; docs/config.md "TLS"), so it is only checked to recover.
    await writeFile(certs.server.crt, 'not a certificate\n');
    await sleep(7000);
    assert.equal(await servedCertificate(server.ports.otlpHttp), 'tracery-server-renewed');
    assert.equal(await servedCertificate(server.ports.http), 'tracery-server-renewed');
    await copyFile(certs.server2.crt, `${certs.server.crt}.new`);
    await rename(`${certs.server.crt}.new`, certs.server.crt);
    await waitFor(server.ports.grpc, 'tracery-server-renewed', ['h2']);
    const spans = await makeSpans('after-reload');
    assert.equal((await exportSpans(exporters.grpc(server), spans)).code, ExportResultCode.SUCCESS);
    assert.equal((await exportSpans(exporters['http/protobuf'](server), await makeSpans('after-reload-http'))).code,
      ExportResultCode.SUCCESS);
    await assertTraceReadable(server, spans);
    assert.match(server.output, /cannot be loaded; keeping the previous certificate/);
  });
});

describe('mutual TLS', () => {
  let server;
  before(async () => {
    if (!certDir) await makeCertificates();
    server = await startTlsServer((paths) => tlsConfig(paths, { mutual: true }), { client: 'client' });
  });
  after(async () => {
    await stopServer(server);
    await rm(certDir, { recursive: true, force: true });
  });

  for (const transport of Object.keys(exporters)) {
    it(`the SDK's ${transport} exporter with a client certificate is served; without one or from another CA, refused`, async () => {
      const spans = await makeSpans(`mtls-${transport}`);
      const result = await exportSpans(exporters[transport](server, 'client'), spans);
      assert.equal(result.code, ExportResultCode.SUCCESS, `export failed: ${result.error?.message}`);
      await assertTraceReadable(server, spans, 'client');
      for (const client of [undefined, 'rogue-client']) {
        const refused = await exportSpans(exporters[transport](server, client), await makeSpans(`refused-${transport}`));
        assert.equal(refused.code, ExportResultCode.FAILED, `${transport} with ${client ?? 'no'} client certificate`);
      }
    });
  }

  it('the query API asks for a verified client certificate', async () => {
    assert.equal((await request(server.ports.http, '/ready', { client: 'client' })).status, 200);
    for (const client of [undefined, 'rogue-client']) {
      await assert.rejects(request(server.ports.http, '/ready', { client }), `query API with ${client ?? 'no'} client certificate`);
    }
    assert.equal((await request(server.ports.http, '/ready', { client: 'client' })).status, 200, 'still up');
  });
});

describe('TLS configuration errors', () => {
  let dir;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tracery-tls-bad-'));
    await writeFile(path.join(dir, 'garbage.crt'), 'not a certificate\n');
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  const start = async (server, extra = {}) => {
    const configPath = path.join(dir, 'config.yaml');
    await writeFile(configPath, toYaml({
      server: { http_listen_address: '127.0.0.1', http_listen_port: await pickFreeLoopbackPort(), ...server },
      storage: { trace: { local: { path: path.join(dir, 'blocks') }, wal: { path: path.join(dir, 'wal') } } },
      ...extra,
    }));
    const run = await runToExit([`-config.file=${configPath}`]);
    return { ...run, text: run.stdout + run.stderr };
  };

  it('a certificate that does not load stops the start, naming the file', async () => {
    const garbage = path.join(dir, 'garbage.crt');
    const run = await start({ http_tls_config: { cert_file: garbage, key_file: garbage } });
    assert.notEqual(run.code, 0);
    assert.match(run.text, /server\.http_tls_config\.cert_file: .*garbage\.crt is not a PEM certificate/);
    const missing = await start({ http_tls_config: { cert_file: path.join(dir, 'missing.crt'), key_file: garbage } });
    assert.notEqual(missing.code, 0);
    assert.match(missing.text, /cannot read .*missing\.crt/);
  });

  it('an unknown cipher suite, TLS version or client auth type is refused with its key', async () => {
    for (const [server, pattern] of [
      [{ tls_cipher_suites: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_MADE_UP' }, /tls_cipher_suites.*TLS_MADE_UP/],
      [{ tls_min_version: 'VersionTLS10' }, /tls_min_version.*obsolete/],
      [{ http_tls_config: { client_auth_type: 'Sometimes' } }, /client_auth_type.*Sometimes/],
    ]) {
      const run = await start(server);
      assert.notEqual(run.code, 0);
      assert.match(run.text, pattern);
    }
  });
});
