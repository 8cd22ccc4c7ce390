// Calls the OTLP gRPC Export method with bytes exactly as given, bypassing any protobuf
// library, so tests can send what no well-behaved client would.

import grpc from '@grpc/grpc-js';

const EXPORT_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const passThrough = (bytes) => bytes;

const grpcStatusName = (code) => Object.keys(grpc.status).find((name) => grpc.status[name] === code) ?? String(code);

// Resolves to { code, name, details } for every outcome, including failures: the status is
// what the tests assert on.
export async function exportRawOverGrpc(address, requestBytes, { metadata = {}, timeoutMs = 10_000 } = {}) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const callMetadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata)) callMetadata.set(key, value);
  try {
    return await new Promise((resolve) => {
      client.makeUnaryRequest(
        EXPORT_METHOD, passThrough, passThrough, Buffer.from(requestBytes), callMetadata,
        { deadline: Date.now() + timeoutMs },
        (error) => {
          const code = error ? error.code : grpc.status.OK;
          // google.rpc.Status, binary, when the server attached details (e.g. RetryInfo).
          const statusDetails = error?.metadata?.get('grpc-status-details-bin')?.[0] ?? null;
          resolve({ code, name: grpcStatusName(code), details: error?.details ?? '', statusDetails });
        },
      );
    });
  } finally {
    client.close();
  }
}
