// The search tests' queries: valid ones covering every TraceQL search feature (each intrinsic
// scoped and legacy, each scope, quoted names, raw strings, every type, nil checks, arrays,
// regexes, arithmetic, precedence, all 15 spanset operators, pipelines, hints), and malformed
// or unsupported ones Tempo refuses. IDs used by trace:id / span:id / link:* queries are taken
// from the data set, so the corpus is a function of it.

import { SERVICES, SCOPES } from './dataset.mjs';

const q = (text) => text;

export function buildCorpus(dataset) {
  const traces = dataset.traces;
  // IDs for the ID intrinsics, picked deterministically (no leading zero, so the padded and
  // trimmed hex forms agree).
  const plain = traces.filter((t) => t.traceId[0] !== '0' && t.spans.length > 5);
  const someTrace = plain[3];
  const otherTrace = plain[17];
  const parentSpan = someTrace.spans.find((s) => someTrace.spans.some((c) => c.parentSpanId === s.spanId));
  const someSpan = otherTrace.spans[2];
  const linked = traces.flatMap((t) => t.spans).filter((s) => s.links.length)[0];
  const link = linked.links[0];

  const valid = [];
  const add = (...texts) => valid.push(...texts);

  // --- basics
  add('{}', '{ }', '{ true }', '{ false }', '{ 1 = 1 }', '{ 1 != 1 }', '{ true && true }', '{ "a" = "a" }');

  // --- intrinsics, legacy and scoped
  add('{ duration > 500ms }', '{ span:duration > 500ms }', '{ duration < 10us }', '{ span:duration >= 1s }',
    '{ duration > 1.5s }', '{ duration <= 100us && duration > 10us }', '{ span:duration < 2µs }', '{ duration > 1m }',
    '{ duration >= 1000000ns && duration < 2ms }', '{ span:duration = span:duration }');
  add('{ name = "charge card" }', '{ span:name = "charge card" }', '{ name =~ "GET.*" }', '{ span:name !~ ".*orders" }',
    '{ name != "HTTP GET" }', '{ name > "r" }', '{ span:name <= "INSERT orders" }', '{ name =~ "(GET|POST) /api/.*" }');
  for (const status of ['ok', 'error', 'unset']) add(`{ status = ${status} }`, `{ span:status = ${status} }`, `{ status != ${status} }`);
  add('{ statusMessage = "card declined" }', '{ span:statusMessage =~ ".*refused" }', '{ statusMessage != "" }',
    '{ span:statusMessage = "done" && status = ok }', '{ statusMessage =~ "timeout.*" || statusMessage = "cached" }');
  for (const kind of ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer']) {
    add(`{ kind = ${kind} }`, `{ span:kind = ${kind} }`);
  }
  add('{ kind != server }', '{ span:kind != client && span:kind != internal }');
  add('{ traceDuration > 2s }', '{ trace:duration > 2s }', '{ trace:duration < 100ms }', '{ traceDuration >= 3500ms }',
    '{ traceDuration < 50us }');
  add('{ rootName = "POST /api/checkout" }', '{ trace:rootName = "POST /api/checkout" }', '{ trace:rootName =~ "GET.*" }',
    '{ rootName =~ "charge.*" }');
  for (const service of ['frontend', 'cart']) add(`{ rootServiceName = "${service}" }`, `{ trace:rootService = "${service}" }`);
  add('{ trace:rootService =~ "check.*|pay.*" }');
  add(`{ trace:id = "${someTrace.traceId}" }`, `{ trace:id = "${someTrace.traceId}" && kind = server }`,
    `{ trace:id =~ "${someTrace.traceId.slice(0, 6)}.*" }`);
  add(`{ span:id = "${someSpan.spanId}" }`, `{ span:id = "${someSpan.spanId}" || span:id = "${parentSpan.spanId}" }`,
    `{ span:parentID = "${parentSpan.spanId}" }`, `{ span:parentID =~ "${parentSpan.spanId.slice(0, 4)}.*" }`);
  add('{ span:childCount > 3 }', '{ span:childCount = 0 }', '{ span:childCount >= 1 && kind = server }', '{ span:childCount = 1 }');
  add('{ nestedSetParent < 0 }', '{ nestedSetParent = -1 }', '{ nestedSetLeft = 1 }', '{ nestedSetRight - nestedSetLeft > 10 }',
    '{ nestedSetLeft > 20 }', '{ nestedSetParent = 0 }', '{ nestedSetRight - nestedSetLeft = 1 }', '{ nestedSetParent = 1 }',
    '{ nestedSetParent < 0 && resource.service.name != nil }');

  // --- events, links, instrumentation
  add('{ event:name = "exception" }', '{ event.exception.type = "TimeoutError" }', '{ event:name = "retry" && event.attempt > 2 }',
    '{ event:timeSinceStart > 100ms }', '{ event.severity >= 1.0 }', '{ event:name =~ "cache.*" }', '{ event.attempt != nil }',
    '{ event:name = "exception" && status = error }', '{ event.exception.message =~ ".*declined" }', '{ event:name != "message" }',
    '{ event:timeSinceStart < 1ms && event:name = "retry" }');
  add(`{ link:traceID = "${link.traceId}" }`, `{ link:spanID = "${link.spanId}" }`, '{ link.relation = "batch" }',
    '{ link.weight > 5 }', '{ link:traceID != nil }', '{ link.weight = nil && link:spanID != nil }',
    '{ link.relation = "follows" && kind = consumer }');
  for (const scope of SCOPES) add(`{ instrumentation:name = "${scope.name}" }`);
  add('{ instrumentation:version = "0.3.1" }', '{ instrumentation:version =~ "1\\\\..*" }', '{ instrumentation.library.language = "java" }',
    '{ instrumentation.library.tier = 2 }', '{ instrumentation.library.stable = true }', '{ instrumentation.library.tier != nil }',
    '{ instrumentation:name = "db.client" && span.db.system = "redis" }');

  // --- attributes: strings, scopes, unscoped lookup order, quoting, raw strings
  for (const service of SERVICES) add(`{ resource.service.name = "${service.name}" }`);
  add('{ .service.name = "checkout" }', '{ .service.name = "span-level-name" }', '{ resource.service.name = "span-level-name" }',
    '{ span.http.method = "POST" }', '{ .http.method = "DELETE" }', '{ span.http.url =~ "https://shop.example/cart/.*" }',
    '{ span.db.system != "redis" }', '{ resource.deployment.environment = "staging" }', '{ resource.cloud.zone =~ "us-.*" }',
    '{ span.region = "mars" }', '{ .region = "eu" }', '{ resource.region = "eu" }', '{ .region = "mars" }',
    '{ span.name = "attribute-called-name" }', '{ name = "attribute-called-name" }', '{ .name = "attribute-called-name" }',
    '{ resource.service.namespace = "platform" && span.component = "grpc" }', '{ span.http.method != "GET" }',
    '{ resource.service.name =~ "c.*" }', '{ resource.service.name !~ "c.*" }', '{ span.http.method > "GET" }');
  add('{ span."attr with space" = "x y" }', '{ ."attr with space" != nil }', '{ resource."pci scope" = "yes" }',
    '{ span."http.method" = "GET" }', '{ span.http."method" = "PUT" }');
  add('{ span.http.url =~ `https://shop\\.example/a/.*` }', '{ name = `charge card` }', '{ resource.service.name = `db-proxy` }');
  // integers, floats, int/float mixing, a key with two types
  add('{ span.http.status_code = 500 }', '{ span.http.status_code >= 400 }', '{ span.http.status_code != 200 }',
    '{ .user.id < 0 }', '{ span.payload.size > 1000000 }', '{ resource.host.cpu.count >= 8 }', '{ span.http.status_code = 500.0 }',
    '{ span.score = 3 }', '{ span.score > 2 }', '{ span.score < 0 }', '{ span.retry.ratio = 0 }', '{ span.retry.ratio >= 1 }',
    '{ span.retry.ratio = 0.25 }', '{ span.code = 200 }', '{ span.code = "200" }', '{ span.code =~ "E.*" }', '{ span.code > 300 }',
    '{ span.user.id >= 4000 && span.user.id <= 4500 }', '{ span.http.status_code < 300 && span.http.status_code >= 200 }',
    '{ resource.host.cpu.count = 1 }', '{ span.payload.size = 0 }', '{ span.user.id > -3 && span.user.id < 3 }');
  // booleans
  add('{ span.cache.hit = true }', '{ span.cache.hit }', '{ span.cache.hit != true }', '{ span.cache.hit = false }',
    '{ resource.host.large = true }', '{ span.entry.point }', '{ .cache.hit = true && .http.method = "GET" }');
  // arrays
  add('{ span.tags = "canary" }', '{ span.tags != "alpha" }', '{ span.tags =~ "b.*" }', '{ span.tags !~ "g.*" }',
    '{ span.ports = 443 }', '{ span.ports > 8000 }', '{ span.ports != 80 }', '{ span.weights = 0.5 }', '{ span.weights > 3 }',
    '{ span.weights < 1 }', '{ span.flags = true }', '{ span.flags != false }', '{ resource.host.arch.list = "arm64" }',
    '{ resource.host.arch.list != "riscv" }', '{ span.tags = "canary" && span.tags = "blue" }', '{ span.ports >= 443 && span.ports <= 443 }');
  // nil
  add('{ span.http.method != nil }', '{ span.db.system = nil }', '{ .user.id = nil && span.http.status_code != nil }',
    '{ resource.host.large = nil }', '{ span.tags != nil }', '{ span.flags = nil && span.weights != nil }', '{ .region != nil }',
    '{ span.region = nil && resource.region = "us" }', '{ event.exception.type = nil && event:name = "exception" }');
  // arithmetic
  add('{ span.http.status_code / 100 = 5 }', '{ span.http.status_code % 100 = 3 }', '{ span.user.id * 2 > 5000 }',
    '{ span.retry.ratio * 100 >= 75 }', '{ duration / 2 > 200ms }', '{ span.payload.size + span.user.id > 1000000 }',
    '{ span.score - 1 = 2 }', '{ span.score ^ 2 > 50 }', '{ span.http.status_code + 100 * 2 = 700 }',
    '{ (span.http.status_code + 100) * 2 = 1200 }', '{ span.http.status_code - 200 > 0 }', '{ duration * 2 > 1s }',
    '{ span.user.id / 3 = 10 }', '{ span.retry.ratio / 2 = 0.25 }', '{ span.score * span.retry.ratio > 5 }',
    '{ span.http.status_code * 1.5 > 700 }', '{ 2 * span.score = 5 }');
  // precedence: && and || are one level, left associative; ! binds tighter than comparisons
  add('{ span.http.method = "GET" || span.http.method = "POST" && span.http.status_code = 500 }',
    '{ span.http.method = "GET" && span.http.status_code = 500 || status = error }',
    '{ span.http.method = "GET" || (span.http.method = "POST" && span.http.status_code = 500) }',
    '{ status = error || kind = server && duration > 1s }',
    '{ !(status = error) }', '{ !(span.cache.hit = true) && kind = server }', '{ !(span.http.method = "GET" || kind = client) }',
    '{ !(span.http.status_code >= 500) && span.http.status_code != nil }',
    '{ (status = error || status = ok) && (kind = client || kind = producer) }');

  // --- spanset operators: all 15, precedence, chains
  const A = '{ kind = server }';
  const B = '{ status = error }';
  for (const op of ['&&', '||', '>', '<', '>>', '<<', '~', '&>', '&<', '&>>', '&<<', '&~', '!>', '!<', '!>>', '!<<', '!~']) {
    add(`${A} ${op} ${B}`);
  }
  for (const op of ['>', '<', '>>', '<<', '~', '&>', '&<', '&>>', '&<<', '&~', '!>', '!<', '!>>', '!<<', '!~']) {
    add(`{ resource.service.name = "frontend" } ${op} { resource.service.name = "checkout" }`);
    add(`{ span.db.system != nil } ${op} { span.http.method = "GET" }`);
  }
  add('{ nestedSetParent < 0 } > { status = error }', '{ } >> { span.db.system = "redis" }', '{ span.http.method != nil } ~ { span.db.system != nil }',
    '{ status = error } << { kind = server }', '{ kind = server } > { kind = client } > { }', '{ kind = server } && { status = error } > { kind = client }',
    '{ kind = server } > { kind = client } && { status = error }', '{ status = ok } || { status = error } && { kind = producer }',
    '({ status = ok } || { status = error }) > { kind = producer }', '{ status = ok } || ({ status = error } && { kind = producer })',
    '({ kind = server } > { kind = client }) >> { span.db.system != nil }', '{ } ~ { } ~ { kind = internal }',
    '{ resource.service.name = "payment" } !>> { status = error }', '{ } !< { span:childCount > 0 }',
    '{ span.cache.hit = true } && { span.cache.hit = false }', '{ event:name = "exception" } >> { event:name = "retry" }',
    '{ false } || { kind = consumer }', '{ false } && { kind = consumer }', '{ false } !> { nestedSetParent = -1 }');

  // --- pipelines
  add('{ } | count() > 10', '{ status = error } | count() >= 2', '{ kind = server } | avg(duration) > 500ms', '{ } | max(duration) > 3s',
    '{ } | min(duration) < 5us', '{ } | sum(duration) > 10s', '{ span.http.status_code != nil } | avg(span.http.status_code) > 300',
    '{ } | max(span.payload.size) > 1500000', '{ } | min(span.user.id) < 0', '{ } | sum(span.retry.ratio) > 5',
    '{ } | avg(span.score) = 3', '{ status = error } | count() = 1', '{ } | count() < 3', '{ } | count() != 1',
    '{ } | by(resource.service.name)', '{ status = error } | by(resource.service.name) | count() > 1',
    '{ } | by(span.http.method) | count() > 3', '{ } | by(kind) | avg(duration) > 1s', '{ } | by(resource.service.name) | coalesce()',
    '{ status = error } | select(span.http.method, resource.service.name)', '{ } | select(span.http.status_code) | count() > 5',
    'count() > 30', 'by(resource.service.name) | count() > 5', 'avg(duration) > 1s', 'select(span.http.url)',
    '{ kind = server } | { status = error }', '{ } | { span.cache.hit = true } | count() > 2', 'max(duration) > 3s | { status = error }',
    '{ } | count() > 5 | { kind = client }', '{ } | by(resource.service.name) | max(duration) > 2s | coalesce()',
    '({ kind = server } | count() > 1) && ({ status = error })', '({ } | count() > 20) >> ({ span.db.system = "redis" })',
    '({ status = error } | count() > 1) || ({ span.tags = "canary" })', '({ kind = server }) > ({ kind = client } | count() > 2)',
    '({ } | count() > 10) &>> ({ kind = client } | count() > 1)', '({ } | by(kind) | count() > 2 | coalesce()) ~ ({ status = ok })',
    '{ } | count() > 3 | by(resource.service.name) | count() > 2', '{ status = error } | by(span.http.status_code)',
    '{ resource.service.name = "payment" } | select(duration, name, status)', '{ } | avg(duration) > 100ms | count() > 10');

  // --- hints
  add('{ status = error } with(most_recent=true)', '{ } | count() > 5 with(most_recent=true)', '{ kind = server } with(most_recent=false)',
    '{ resource.service.name = "cart" } with (most_recent = true)', '{ status = error } >> { } with(most_recent=true)');

  // --- volume: every span name, status code and method, scoped and unscoped
  for (const name of ['GET /api/cart', 'POST /api/checkout', 'GET /api/items', 'charge card', 'SELECT orders', 'INSERT orders',
    'publish order.created', 'consume order.created', 'validate token', 'render page', 'cache lookup', 'compute shipping',
    'reserve stock', 'HTTP GET', 'grpc.Payment/Charge']) add(`{ name = "${name}" }`);
  for (const code of [200, 201, 204, 301, 404, 429, 503]) add(`{ span.http.status_code = ${code} }`, `{ .http.status_code = ${code} && status = error }`);
  for (const method of ['GET', 'PUT']) add(`{ .http.method = "${method}" && kind = client }`);

  const malformed = [
    // syntax errors
    q('{'), q('}'), q('{ .a = }'), q('{ .a = 1'), q('{ (.a < 3 }'), q('{ . }'), q('{ span. }'), q('{ attribute = 4 }'),
    q('{ .a == 4 }'), q('true'), q('( true )'), q('[ true ]'), q('{ true } + { true }'), q('{ true } = { true }'),
    q('{ true } <= { true }'), q('{ .a = "unterminated }'), q('{ .a = `unterminated }'), q('{ span."unterminated = 1 }'),
    q('{ span.http.status_code = 200 } |'), q('| count() > 1'), q('{ } | count()'), q('{ } | count = 1'), q('{ } | max() = 1'),
    q('{ } | by()'), q('{ } | notAnAggregate() = 1'), q('coalesce() | { true }'), q('count() > 3 && { true }'), q('select(.a'),
    q('select()'), q('{ } | select(1 + 2)'), q('{ childCount > 1 }'), q('{ span:foo = 1 }'), q('{ trace:name = "x" }'),
    q('{ span.a = 1 } with('), q('{ span.a = 1 } with(most_recent)'), q('{ .a = 1 } &&'), q('{ .a = 1 } >>'), q('{ .a = 1 }}'),
    q('{{ .a = 1 }}'), q('{ .a = 1 } { .b = 2 }'), q('{ .a > nil }'), q('{ 1.2.3 = 1 }'), q('{ duration > 5xs }'),
    q("{ .a = 'single' }"), q('{ .a ! = 1 }'), q('{ name = "x" } |> { }'), q('   '), q('{ .a = 1 } | { .b = 2 } |'),
    q('{ .a = 1 } | by(.b'), q('{ resource. = 1 }'), q('{ status = }'), q('{ kind = }'), q('{ .a = 1 } ||| { .b = 1 }'),
    q('{ .a = 1 } | coalesce(1)'), q('{ .a =~ }'), q('{ "x" = .a } |'),
    // type errors Tempo's validation refuses
    q('{ 1 }'), q('{ "foo" }'), q('{ status }'), q('{ kind }'), q('{ ok }'), q('{ 1.1 }'), q('{ 1h }'), q('{ 1 + 1 }'),
    q('{ 1 + "foo" = 1 }'), q('{ 1 - true = 1 }'), q('{ 1 = "foo" }'), q('{ 1 != true }'), q('{ 1 > ok }'), q('{ 1 = name }'),
    q('{ 1 =~ 2 }'), q('{ 1 && "foo" }'), q('{ status > ok }'), q('{ kind < consumer }'), q('{ traceDuration > "test" }'),
    q('{ rootServiceName = 1 }'), q('{ rootName != 3.2 }'), q('{ -true }'), q('{ !"foo" = "bar" }'), q('{ !1 = 1 }'),
    q('{ name =~ 5 }'), q('{ status = 1 }'), q('{ kind = "server" }'), q('{ duration > "1s" }'), q('{ span:id = 5 }'),
    q('{ nestedSetLeft = "x" }'), q('{ } | avg(name) > 1'), q('{ } | sum(3) = 2'), q('{ } | by(1)'), q('{ } | by("foo")'),
    q('{ span:name = nil }'), q('{ duration = nil }'),
    // invalid regular expressions
    q('{ name =~ "[a-" }'), q('{ span.http.url =~ "(abc" }'), q('{ name !~ "*x" }'), q('{ resource.service.name =~ "a{2,1}" }'),
    q('{ name =~ "\\\\" }'),
    // parse, but unsupported
    q('{ parent.a != 3 }'), q('{ parent.span.a > 3 }'), q('{ parent.resource.a = "x" }'), q('{ parent.duration = 1h }'),
    q('{ parent = nil }'), q('{ } | count() > count()'), q('{ } | min(span.a) < max(duration)'), q('{ } | count() + count() = 1'),
    q('({ } | count()) > ({ } | count())'), q('({ } | count()) = 1'), q('avg(.field) > 1 - 3'), q('3 = 2'),
    q('{ } | sum(.a) = min(.a)'),
    // metrics queries are not searches
    q('{ } | rate()'), q('{ status = error } | count_over_time() by (resource.service.name)'),
    q('{ } | quantile_over_time(duration, .9)'),
  ];

  return { valid, malformed };
}
