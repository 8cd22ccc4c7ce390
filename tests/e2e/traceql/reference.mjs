// A brute-force reference for TraceQL search: parse the query (our own recursive-descent parser
// following the operator precedences of Tempo's grammar, pkg/traceql/expr.y), check it as Tempo
// validates it, and evaluate it over every span of every trace with no pruning at all. The
// search tests compare the server's answers with this.
//
// Why not walk @grafana/lezer-traceql's tree: that grammar is Grafana's editor grammar, not
// Tempo's. Its tree nests pipelines differently from Tempo, it has no precedence between the
// spanset operators, and it does not know nestedSet*, so it can only serve as a cross-check
// (every valid corpus query must parse with it; see selfcheck.mjs and search.test.mjs).
//
// Semantics follow Tempo's documentation (construct-traceql-queries) and, where the docs are
// silent, Tempo's evaluator: a missing attribute compared with anything is false (`!=` too);
// operands of mismatched types compare false; `=` between int and float is numeric; int op int
// stays int (integer division); `=~` is fully anchored; arrays match with `=`/`=~` if any element
// matches and with `!=`/`!~` if no element matches; `&&` and `||` share one precedence level and
// associate to the left; `!` binds tighter than comparisons and `+ -`, looser than `* / %`.

// ---------------------------------------------------------------------------------------
// Errors

export class TraceQLError extends Error {
  constructor(kind, message, position) {
    super(position === undefined ? message : `${message} at ${position.line}:${position.column}`);
    this.kind = kind; // 'syntax' | 'invalid' | 'unsupported' | 'metrics'
    this.position = position;
  }
}

// ---------------------------------------------------------------------------------------
// Lexer

const ATTRIBUTE_SCOPES = ['span', 'resource', 'event', 'link', 'instrumentation', 'parent'];
const SCOPED_INTRINSICS = {
  trace: { duration: 'traceDuration', rootName: 'rootName', rootService: 'rootServiceName', id: 'trace:id' },
  span: {
    duration: 'duration', name: 'name', kind: 'kind', status: 'status', statusMessage: 'statusMessage',
    id: 'span:id', parentID: 'span:parentID', childCount: 'span:childCount',
  },
  event: { name: 'event:name', timeSinceStart: 'event:timeSinceStart' },
  link: { traceID: 'link:traceID', spanID: 'link:spanID' },
  instrumentation: { name: 'instrumentation:name', version: 'instrumentation:version' },
};
// Unscoped intrinsics (expr.y intrinsicField; childCount is gone since Tempo 2.10).
const INTRINSICS = ['duration', 'name', 'status', 'statusMessage', 'kind', 'parent', 'rootName', 'rootServiceName',
  'traceDuration', 'nestedSetLeft', 'nestedSetRight', 'nestedSetParent'];
const INTRINSIC_TYPES = {
  duration: 'duration', name: 'string', status: 'status', statusMessage: 'string', kind: 'kind', parent: 'nil',
  rootName: 'string', rootServiceName: 'string', traceDuration: 'duration', nestedSetLeft: 'int',
  nestedSetRight: 'int', nestedSetParent: 'int', 'trace:id': 'string', 'span:id': 'string', 'span:parentID': 'string',
  'span:childCount': 'int', 'event:name': 'string', 'event:timeSinceStart': 'duration', 'link:traceID': 'string',
  'link:spanID': 'string', 'instrumentation:name': 'string', 'instrumentation:version': 'string',
};
const STATUS_VALUES = { error: 0, ok: 1, unset: 2 };
const KIND_VALUES = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
const METRICS_FUNCTIONS = ['rate', 'count_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'avg_over_time',
  'quantile_over_time', 'histogram_over_time', 'compare', 'topk', 'bottomk'];
const OPERATORS = ['&>>', '&<<', '!>>', '!<<', '&&', '||', '>>', '<<', '>=', '<=', '!=', '=~', '!~', '&>', '&<', '&~',
  '!>', '!<', '=', '<', '>', '!', '~', '+', '-', '*', '/', '%', '^', '{', '}', '(', ')', ',', '|'];
const NAME_STOP = new Set([' ', '\t', '\n', '\r', '{', '}', '(', ')', '=', '~', '!', '<', '>', '&', '|', '^', ',']);
const DURATION_UNITS = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9, w: 7 * 86400e9, y: 365 * 86400e9 };

function positionOf(text, offset) {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

export function tokenize(text) {
  const tokens = [];
  let i = 0;
  const fail = (message, at = i) => { throw new TraceQLError('syntax', message, positionOf(text, at)); };
  const readQuoted = () => { // at a '"'; Go strconv.Unquote rules for the escapes we accept
    const start = i;
    i += 1;
    let value = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text[i];
      if (c === '"') { i += 1; return value; }
      if (c === '\n') fail('newline in string', start);
      if (c === '\\') {
        const e = text[i + 1];
        const simple = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v' };
        if (e in simple) { value += simple[e]; i += 2; continue; }
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) { value += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16)); i += 6; continue; }
        if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) { value += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16)); i += 4; continue; }
        fail('invalid escape in string', i);
      }
      value += c;
      i += 1;
    }
  };
  const readAttributeName = () => {
    let name = '';
    while (i < text.length && !NAME_STOP.has(text[i])) {
      if (text[i] === '"') {
        // a quoted segment: only \" and \\ are escapes
        const start = i;
        i += 1;
        for (;;) {
          if (i >= text.length) fail('unterminated quoted attribute name', start);
          if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) { name += text[i + 1]; i += 2; continue; }
          if (text[i] === '"') { i += 1; break; }
          name += text[i];
          i += 1;
        }
        continue;
      }
      name += text[i];
      i += 1;
    }
    return name;
  };
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) { i += 1; continue; }
    const start = i;
    const push = (token) => tokens.push({ ...token, offset: start });
    if (c === '"') { push({ t: 'str', v: readQuoted() }); continue; }
    if (c === '`') {
      const end = text.indexOf('`', i + 1);
      if (end < 0) fail('unterminated raw string');
      push({ t: 'str', v: text.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const number = /^[0-9]+(\.[0-9]+)?/.exec(text.slice(i))[0];
      const rest = text.slice(i);
      const duration = /^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+/.exec(rest);
      if (duration && !/^[A-Za-z0-9_.]/.test(rest.slice(duration[0].length))) {
        let total = 0;
        for (const part of duration[0].matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w|y)/g)) total += Number(part[1]) * DURATION_UNITS[part[2]];
        push({ t: 'dur', v: Math.round(total) });
        i += duration[0].length;
        continue;
      }
      if (/^[A-Za-z_]/.test(rest.slice(number.length))) fail(`invalid number ${rest.slice(0, number.length + 1)}`);
      push(number.includes('.') ? { t: 'float', v: Number(number) } : { t: 'int', v: Number(number) });
      i += number.length;
      continue;
    }
    if (c === '.') {
      i += 1;
      const name = readAttributeName();
      if (!name) fail('expected an attribute name after "."', start);
      push({ t: 'attr', scope: 'none', parent: false, name });
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))[0];
      i += word.length;
      if (text[i] === '.' && ATTRIBUTE_SCOPES.includes(word)) {
        i += 1;
        let scope = word;
        let parent = false;
        if (word === 'parent') {
          parent = true;
          scope = 'none';
          const inner = /^(span|resource)\./.exec(text.slice(i));
          if (inner) { scope = inner[1]; i += inner[0].length; }
        }
        const name = readAttributeName();
        if (!name) fail(`expected an attribute name after "${word}."`, start);
        push({ t: 'attr', scope, parent, name });
        continue;
      }
      if (text[i] === ':' && word in SCOPED_INTRINSICS) {
        i += 1;
        const field = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))?.[0];
        if (!field || !(field in SCOPED_INTRINSICS[word])) fail(`unknown intrinsic ${word}:${field ?? ''}`, start);
        i += field.length;
        push({ t: 'intr', name: SCOPED_INTRINSICS[word][field] });
        continue;
      }
      push({ t: 'word', v: word });
      continue;
    }
    const op = OPERATORS.find((candidate) => text.startsWith(candidate, i));
    if (!op) fail(`unexpected character ${JSON.stringify(c)}`);
    i += op.length;
    push({ t: 'op', v: op });
  }
  tokens.push({ t: 'eof', offset: text.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Parser

const FIELD_PRECEDENCE = {
  '&&': 1, '||': 1,
  '=': 2, '!=': 2, '<': 2, '<=': 2, '>': 2, '>=': 2, '=~': 2, '!~': 2,
  '+': 3, '-': 3,
  '*': 5, '/': 5, '%': 5,
  '^': 6,
};
const NOT_PRECEDENCE = 4;
const SPANSET_PRECEDENCE = {
  '&&': 1, '||': 1,
  '>': 2, '<': 2, '>>': 2, '<<': 2, '~': 2, '!>': 2, '!<': 2, '!>>': 2, '!<<': 2, '!~': 2,
  '&>': 2, '&<': 2, '&>>': 2, '&<<': 2, '&~': 2,
};
const COMPARISONS = ['=', '!=', '<', '<=', '>', '>='];
const AGGREGATES = ['count', 'avg', 'min', 'max', 'sum'];

class Parser {
  constructor(text) {
    this.text = text;
    this.tokens = tokenize(text);
    this.at = 0;
  }

  peek(ahead = 0) { return this.tokens[this.at + ahead]; }
  next() { return this.tokens[this.at++]; }
  isOp(value, ahead = 0) { const t = this.peek(ahead); return t.t === 'op' && t.v === value; }
  isWord(value, ahead = 0) { const t = this.peek(ahead); return t.t === 'word' && t.v === value; }
  fail(message, token = this.peek()) {
    throw new TraceQLError('syntax', `${message}, found ${describe(token)}`, positionOf(this.text, token.offset));
  }
  expectOp(value) {
    if (!this.isOp(value)) this.fail(`expected '${value}'`);
    return this.next();
  }

  parseRoot() {
    const pipeline = this.parsePipeline(false);
    let hints = null;
    if (this.isWord('with')) hints = this.parseHints();
    if (this.peek().t !== 'eof') this.fail('unexpected input');
    if (pipeline.kind === 'scalarpipe') {
      throw new TraceQLError('unsupported', 'scalar filters over pipelines are not supported');
    }
    return { pipeline, hints };
  }

  parseHints() {
    this.next();
    this.expectOp('(');
    const hints = {};
    for (;;) {
      const name = this.next();
      if (name.t !== 'word') this.fail('expected a hint name', name);
      this.expectOp('=');
      hints[name.v] = this.parseStaticLiteral();
      if (this.isOp(',')) { this.next(); continue; }
      this.expectOp(')');
      return hints;
    }
  }

  parseStaticLiteral() {
    const token = this.next();
    if (token.t === 'str') return { t: 'string', v: token.v };
    if (token.t === 'int') return { t: 'int', v: token.v };
    if (token.t === 'float') return { t: 'float', v: token.v };
    if (token.t === 'dur') return { t: 'duration', v: token.v };
    if (token.t === 'word' && (token.v === 'true' || token.v === 'false')) return { t: 'bool', v: token.v === 'true' };
    if (token.t === 'word' && token.v in STATUS_VALUES) return { t: 'status', v: STATUS_VALUES[token.v] };
    if (token.t === 'word' && token.v in KIND_VALUES) return { t: 'kind', v: KIND_VALUES[token.v] };
    return this.fail('expected a value', token);
  }

  // A pipeline: elements joined by '|'. Returns { kind: 'pipeline', elements } or, when the
  // only element is a combination of wrapped pipelines, that combination.
  parsePipeline(insideParens) {
    const elements = [];
    for (;;) {
      const element = this.parseElement(elements.length === 0, insideParens);
      if (element.kind === 'scalarpipe') {
        if (elements.length > 0 || this.isOp('|')) this.fail('a scalar pipeline cannot be part of a pipeline');
        return element;
      }
      if (element.kind === 'pipeexpr' || element.kind === 'wrapped') {
        if (elements.length > 0) this.fail('a wrapped pipeline cannot follow "|"');
        if (this.isOp('|')) this.fail('a wrapped pipeline cannot be followed by "|"');
        return element;
      }
      elements.push(element);
      if (element.kind === 'aggregate') {
        // `( pipeline | count() )`: a scalar pipeline, only valid compared with something
        if (!insideParens || !this.isOp(')') || elements.length < 2) this.fail('an aggregate must be compared with a value');
        return { kind: 'scalarpipe' };
      }
      if (!this.isOp('|')) break;
      this.next();
      const after = this.peek();
      if (after.t === 'word' && METRICS_FUNCTIONS.includes(after.v)) {
        throw new TraceQLError('metrics', 'metrics queries are not search queries', positionOf(this.text, after.offset));
      }
    }
    return { kind: 'pipeline', elements };
  }

  parseElement(first, insideParens) {
    const token = this.peek();
    if (token.t === 'word') {
      if (token.v === 'by') {
        this.next(); this.expectOp('(');
        const expression = this.parseField(1);
        this.expectOp(')');
        return { kind: 'by', expression };
      }
      if (token.v === 'coalesce') {
        if (first) this.fail('a pipeline cannot start with coalesce()');
        this.next(); this.expectOp('('); this.expectOp(')');
        return { kind: 'coalesce' };
      }
      if (token.v === 'select') {
        this.next(); this.expectOp('(');
        const attributes = [];
        for (;;) {
          const attribute = this.next();
          if (attribute.t === 'attr') attributes.push({ k: 'attr', scope: attribute.scope, parent: attribute.parent, name: attribute.name });
          else if (attribute.t === 'intr') attributes.push({ k: 'intr', name: attribute.name });
          else if (attribute.t === 'word' && INTRINSICS.includes(attribute.v)) attributes.push({ k: 'intr', name: attribute.v });
          else this.fail('select() takes attributes', attribute);
          if (this.isOp(',')) { this.next(); continue; }
          this.expectOp(')');
          return { kind: 'select', attributes };
        }
      }
      if (AGGREGATES.includes(token.v) || ['minInt', 'maxInt'].includes(token.v)) return this.parseScalarFilter(insideParens);
      if (METRICS_FUNCTIONS.includes(token.v)) {
        throw new TraceQLError('metrics', 'metrics queries are not search queries', positionOf(this.text, token.offset));
      }
    }
    if (token.t === 'int' || token.t === 'float' || token.t === 'dur' || (token.t === 'op' && token.v === '-')) {
      return this.parseScalarFilter(insideParens);
    }
    if (token.t === 'op' && (token.v === '{' || token.v === '(')) return this.parseSpansetExpression(1);
    return this.fail('expected a spanset filter, a scalar filter, by(), coalesce() or select()');
  }

  parseScalarFilter(insideParens) {
    const lhs = this.parseScalar(3);
    const op = this.peek();
    if (op.t === 'op' && COMPARISONS.includes(op.v)) {
      this.next();
      const rhs = this.parseScalar(3);
      return { kind: 'scalarFilter', op: op.v, lhs, rhs };
    }
    if (insideParens && lhs.k === 'aggregate') return { kind: 'aggregate' };
    return this.fail('expected a comparison after a scalar expression');
  }

  parseScalar(minPrecedence) {
    let left = this.parseScalarPrimary();
    for (;;) {
      const op = this.peek();
      if (op.t !== 'op' || !['+', '-', '*', '/', '%', '^'].includes(op.v)) return left;
      const precedence = FIELD_PRECEDENCE[op.v];
      if (precedence < minPrecedence) return left;
      this.next();
      const right = this.parseScalar(op.v === '^' ? precedence : precedence + 1);
      left = { k: 'scalarOp', op: op.v, l: left, r: right };
    }
  }

  parseScalarPrimary() {
    const token = this.next();
    if (token.t === 'word' && AGGREGATES.includes(token.v)) {
      this.expectOp('(');
      if (token.v === 'count') { this.expectOp(')'); return { k: 'aggregate', fn: 'count', text: 'count()' }; }
      const start = this.peek().offset;
      if (this.isOp(')')) this.fail(`${token.v}() needs an argument`);
      const expression = this.parseField(1);
      const end = this.peek().offset;
      this.expectOp(')');
      return { k: 'aggregate', fn: token.v, expression, text: `${token.v}(${this.text.slice(start, end).trim()})` };
    }
    if (token.t === 'int') return { k: 'static', t: 'int', v: token.v };
    if (token.t === 'float') return { k: 'static', t: 'float', v: token.v };
    if (token.t === 'dur') return { k: 'static', t: 'duration', v: token.v };
    if (token.t === 'op' && token.v === '-') {
      const number = this.next();
      if (number.t === 'int') return { k: 'static', t: 'int', v: -number.v };
      if (number.t === 'float') return { k: 'static', t: 'float', v: -number.v };
      if (number.t === 'dur') return { k: 'static', t: 'duration', v: -number.v };
      return this.fail('expected a number after "-"', number);
    }
    if (token.t === 'op' && token.v === '(') {
      const inner = this.parseScalar(3);
      this.expectOp(')');
      return inner;
    }
    if (token.t === 'word' && (token.v === 'minInt' || token.v === 'maxInt')) return { k: 'static', t: 'int', v: token.v === 'minInt' ? -(2 ** 63) : 2 ** 63 - 1 };
    return this.fail('expected an aggregate or a number', token);
  }

  // Spanset expressions: '{...}', parenthesised ones, and wrapped pipelines, joined by spanset
  // operators. kind: 'expr' (a plain spanset expression), 'wrapped' (a parenthesised
  // pipeline) or 'pipeexpr' (an operator over wrapped pipelines).
  parseSpansetExpression(minPrecedence) {
    let left = this.parseSpansetPrimary();
    for (;;) {
      const op = this.peek();
      if (op.t !== 'op' || !(op.v in SPANSET_PRECEDENCE)) return left;
      const precedence = SPANSET_PRECEDENCE[op.v];
      if (precedence < minPrecedence) return left;
      this.next();
      const right = this.parseSpansetExpression(precedence + 1);
      left = combineSpansets(this, op, left, right);
    }
  }

  parseSpansetPrimary() {
    const token = this.peek();
    if (token.t === 'op' && token.v === '{') {
      this.next();
      if (this.isOp('}')) { this.next(); return { kind: 'expr', paren: false, node: { k: 'filter', expression: { k: 'static', t: 'bool', v: true } } }; }
      const expression = this.parseField(1);
      this.expectOp('}');
      return { kind: 'expr', paren: false, node: { k: 'filter', expression } };
    }
    if (token.t === 'op' && token.v === '(') {
      this.next();
      const inner = this.parsePipeline(true);
      this.expectOp(')');
      if (inner.kind === 'scalarpipe') {
        // ( pipeline | aggregate ) compared with something: parses in Tempo, never supported
        this.skipScalarPipelineComparison();
        return { kind: 'scalarpipe' };
      }
      if (inner.kind === 'pipeline' && inner.elements.length === 1 && inner.elements[0].kind === 'expr') {
        return { kind: 'expr', paren: true, node: inner.elements[0].node };
      }
      if (inner.kind === 'pipeexpr' || inner.kind === 'wrapped') return { ...inner, paren: true };
      return { kind: 'wrapped', paren: true, node: { k: 'pipeline', elements: inner.elements } };
    }
    return this.fail("expected '{' or '('");
  }

  skipScalarPipelineComparison() {
    for (;;) {
      const token = this.peek();
      if (token.t === 'eof' || (token.t === 'word' && token.v === 'with') || (token.t === 'op' && token.v === ')')) return;
      if (token.t === 'op' && token.v === '(') {
        this.next();
        const inner = this.parsePipeline(true);
        this.expectOp(')');
        if (inner.kind !== 'scalarpipe') this.fail('expected a scalar pipeline');
        continue;
      }
      this.next();
    }
  }

  // Field expressions with expr.y's precedences.
  parseField(minPrecedence) {
    let left = this.parseFieldUnary();
    for (;;) {
      const op = this.peek();
      if (op.t !== 'op' || !(op.v in FIELD_PRECEDENCE)) return left;
      const precedence = FIELD_PRECEDENCE[op.v];
      if (precedence < minPrecedence) return left;
      this.next();
      if ((op.v === '=' || op.v === '!=') && this.isWord('nil')) {
        this.next();
        left = { k: 'exists', expression: left, negate: op.v === '=', offset: op.offset };
        continue;
      }
      const right = this.parseField(op.v === '^' ? precedence : precedence + 1);
      left = { k: 'bin', op: op.v, l: left, r: right };
    }
  }

  parseFieldUnary() {
    const token = this.next();
    if (token.t === 'op' && token.v === '!') return { k: 'un', op: '!', e: this.parseField(NOT_PRECEDENCE + 1) };
    if (token.t === 'op' && token.v === '-') return { k: 'un', op: '-', e: this.parseField(NOT_PRECEDENCE) };
    if (token.t === 'op' && token.v === '(') {
      const inner = this.parseField(1);
      this.expectOp(')');
      return inner;
    }
    if (token.t === 'str') return { k: 'static', t: 'string', v: token.v };
    if (token.t === 'int') return { k: 'static', t: 'int', v: token.v };
    if (token.t === 'float') return { k: 'static', t: 'float', v: token.v };
    if (token.t === 'dur') return { k: 'static', t: 'duration', v: token.v };
    if (token.t === 'attr') return { k: 'attr', scope: token.scope, parent: token.parent, name: token.name };
    if (token.t === 'intr') return { k: 'intr', name: token.name };
    if (token.t === 'word') {
      if (token.v === 'true' || token.v === 'false') return { k: 'static', t: 'bool', v: token.v === 'true' };
      if (token.v in STATUS_VALUES) return { k: 'static', t: 'status', v: STATUS_VALUES[token.v] };
      if (token.v in KIND_VALUES) return { k: 'static', t: 'kind', v: KIND_VALUES[token.v] };
      if (INTRINSICS.includes(token.v)) return { k: 'intr', name: token.v };
      if (token.v === 'minInt' || token.v === 'maxInt') return { k: 'static', t: 'int', v: token.v === 'minInt' ? -(2 ** 63) : 2 ** 63 - 1 };
      if (token.v === 'nil') {
        // nil = X / nil != X
        const op = this.next();
        if (op.t !== 'op' || (op.v !== '=' && op.v !== '!=')) this.fail("expected '=' or '!=' after nil", op);
        const expression = this.parseField(3);
        return { k: 'exists', expression, negate: op.v === '=', offset: op.offset };
      }
    }
    return this.fail('expected a field expression', token);
  }
}

function combineSpansets(parser, op, left, right) {
  if (left.kind === 'scalarpipe' || right.kind === 'scalarpipe') parser.fail('scalar pipelines cannot be combined with spanset operators', op);
  if (left.kind === 'expr' && right.kind === 'expr') {
    return { kind: 'expr', paren: false, node: { k: 'spansetOp', op: op.v, l: left.node, r: right.node } };
  }
  // an operator over wrapped pipelines: each side must be parenthesised
  for (const side of [left, right]) {
    if (!side.paren && side.kind === 'expr') parser.fail('a spanset filter next to a wrapped pipeline must be parenthesised', op);
  }
  const asPipeline = (side) => (side.kind === 'expr' ? { k: 'pipeline', elements: [{ kind: 'expr', node: side.node }] } : side.node);
  return { kind: 'pipeexpr', paren: false, node: { k: 'spansetOp', op: op.v, l: asPipeline(left), r: asPipeline(right) } };
}

function describe(token) {
  if (!token || token.t === 'eof') return 'end of query';
  if (token.t === 'op' || token.t === 'word') return `'${token.v}'`;
  if (token.t === 'attr') return `attribute ${token.name}`;
  if (token.t === 'intr') return token.name;
  return `${token.t} ${JSON.stringify(token.v)}`;
}

// ---------------------------------------------------------------------------------------
// Validation (Tempo's static type rules and unsupported forms)

const NUMERIC = new Set(['int', 'float', 'duration']);
const ARRAY_ELEMENT = { intArray: 'int', floatArray: 'float', stringArray: 'string', boolArray: 'bool' };

function isMatchingOperand(a, b) {
  if (a === 'attribute' || b === 'attribute') return true;
  if (a === b) return true;
  if (NUMERIC.has(a) && NUMERIC.has(b)) return true;
  if (a === 'nil' || b === 'nil') return true;
  if (a in ARRAY_ELEMENT) return isMatchingOperand(ARRAY_ELEMENT[a], b);
  if (b in ARRAY_ELEMENT) return isMatchingOperand(ARRAY_ELEMENT[b], a);
  return false;
}

function binaryTypeValid(op, t) {
  switch (t) {
    case 'attribute': return true;
    case 'bool': case 'boolArray': return ['&&', '||', '=', '!='].includes(op);
    case 'int': case 'float': case 'duration': case 'intArray': case 'floatArray':
      return ['+', '-', '*', '/', '%', '^', '=', '!=', '<', '<=', '>', '>='].includes(op);
    case 'string': case 'stringArray': return ['=', '!=', '=~', '!~', '<', '<=', '>', '>='].includes(op);
    case 'nil': case 'status': case 'kind': return op === '=' || op === '!=';
    default: return false;
  }
}
const BOOLEAN_OPS = new Set(['&&', '||', '=', '!=', '=~', '!~', '<', '<=', '>', '>=']);

function impliedType(node) {
  switch (node.k) {
    case 'static': return node.t;
    case 'attr': return 'attribute';
    case 'intr': return INTRINSIC_TYPES[node.name];
    case 'exists': return 'bool';
    case 'un': return impliedType(node.e);
    case 'bin': {
      if (BOOLEAN_OPS.has(node.op)) return 'bool';
      const t = impliedType(node.l);
      return t === 'attribute' ? impliedType(node.r) : t;
    }
    default: throw new Error(`no type for ${node.k}`);
  }
}

function referencesSpan(node) {
  switch (node.k) {
    case 'attr': case 'intr': return true;
    case 'static': return false;
    case 'exists': return referencesSpan(node.expression);
    case 'un': return referencesSpan(node.e);
    case 'bin': return referencesSpan(node.l) || referencesSpan(node.r);
    default: return false;
  }
}

function invalid(message) { return new TraceQLError('invalid', message); }
function unsupported(message) { return new TraceQLError('unsupported', message); }

function validateField(node) {
  switch (node.k) {
    case 'static': return;
    case 'attr':
      if (node.parent) throw unsupported('parent attributes are not supported');
      return;
    case 'intr':
      if (node.name === 'parent') throw unsupported('the parent intrinsic is not supported');
      return;
    case 'exists':
      validateField(node.expression);
      if (node.negate && node.expression.k === 'intr') throw invalid('an intrinsic cannot be compared with nil');
      return;
    case 'un': {
      validateField(node.e);
      const t = impliedType(node.e);
      if (t === 'attribute') return;
      if (node.op === '!' && t !== 'bool') throw invalid('! needs a boolean');
      if (node.op === '-' && !NUMERIC.has(t)) throw invalid('- needs a number');
      return;
    }
    case 'bin': {
      validateField(node.l);
      validateField(node.r);
      const lt = impliedType(node.l);
      const rt = impliedType(node.r);
      if (!isMatchingOperand(lt, rt)) throw invalid(`binary operations must operate on the same type (${lt} ${node.op} ${rt})`);
      if (!binaryTypeValid(node.op, lt) || !binaryTypeValid(node.op, rt)) throw invalid(`illegal operation for the given types (${lt} ${node.op} ${rt})`);
      if ((node.op === '=~' || node.op === '!~') && node.r.k === 'static') compileRegex(node.r.v);
      return;
    }
    default: throw new Error(`cannot validate ${node.k}`);
  }
}

const regexCache = new Map();
function compileRegex(source) {
  if (!regexCache.has(source)) {
    // Go RE2 syntax and JavaScript agree on everything the corpus uses; lookarounds and
    // backreferences (not RE2) are refused here as Go refuses them.
    if (/\(\?[=!<]|\\[1-9]/.test(source)) throw invalid(`invalid regex ${source}`);
    try {
      regexCache.set(source, new RegExp(`^(?:${source})$`));
    } catch {
      throw invalid(`invalid regex ${source}`);
    }
  }
  return regexCache.get(source);
}

function validateSpanset(node) {
  if (node.k === 'filter') {
    validateField(node.expression);
    const t = impliedType(node.expression);
    if (t !== 'attribute' && t !== 'bool') throw invalid('span filter field expressions must resolve to a boolean');
    return;
  }
  if (node.k === 'spansetOp') { validateSpanset(node.l); validateSpanset(node.r); return; }
  if (node.k === 'pipeline') { validatePipeline(node.elements); return; }
  throw new Error(`cannot validate ${node.k}`);
}

function scalarType(node) {
  if (node.k === 'aggregate') return node.fn === 'count' ? 'int' : impliedType(node.expression);
  if (node.k === 'static') return node.t;
  const t = scalarType(node.l);
  return t === 'attribute' ? scalarType(node.r) : t;
}

function validateScalar(node) {
  if (node.k === 'aggregate') {
    if (node.fn === 'count') return;
    validateField(node.expression);
    const t = impliedType(node.expression);
    if (t !== 'attribute' && !NUMERIC.has(t)) throw invalid(`aggregate field expressions must resolve to a number type: ${node.text}`);
    if (!referencesSpan(node.expression)) throw invalid(`aggregate field expressions must reference the span: ${node.text}`);
    return;
  }
  if (node.k === 'scalarOp') {
    validateScalar(node.l);
    validateScalar(node.r);
    const lt = scalarType(node.l);
    const rt = scalarType(node.r);
    if (!isMatchingOperand(lt, rt)) throw invalid('binary operations must operate on the same type');
    if (!binaryTypeValid(node.op, lt) || !binaryTypeValid(node.op, rt)) throw invalid('illegal operation for the given types');
  }
}

function validatePipeline(elements) {
  for (const element of elements) {
    switch (element.kind) {
      case 'expr': validateSpanset(element.node); break;
      case 'by':
        validateField(element.expression);
        if (!referencesSpan(element.expression)) throw invalid('grouping field expressions must reference the span');
        break;
      case 'coalesce': break;
      case 'select': for (const attribute of element.attributes) validateField(attribute); break;
      case 'scalarFilter': {
        validateScalar(element.lhs);
        validateScalar(element.rhs);
        const lt = scalarType(element.lhs);
        const rt = scalarType(element.rhs);
        if (!isMatchingOperand(lt, rt)) throw invalid('binary operations must operate on the same type');
        if (!binaryTypeValid(element.op, lt) || !binaryTypeValid(element.op, rt)) throw invalid('illegal operation for the given types');
        if (element.lhs.k !== 'aggregate') throw unsupported('scalar filter lhs must be an aggregate');
        if (element.rhs.k !== 'static') throw unsupported('scalar filter rhs must be a literal');
        break;
      }
      default: throw new Error(`cannot validate ${element.kind}`);
    }
  }
}

// Parses and validates a query. Throws TraceQLError; returns { root, hints }.
export function parseQuery(text) {
  const parser = new Parser(text);
  const { pipeline, hints } = parser.parseRoot();
  const root = pipeline.kind === 'pipeline' ? { k: 'pipeline', elements: pipeline.elements } : pipeline.node;
  validateSpanset(root);
  return { root, hints, text };
}

// ---------------------------------------------------------------------------------------
// Traces as TraceQL sees them (src/traceql/trace_view.h)

export function anyValueToStatic(value) {
  if (!value) return NIL;
  if ('stringValue' in value) return { t: 'string', v: value.stringValue };
  if ('intValue' in value) return { t: 'int', v: Number(value.intValue) };
  if ('doubleValue' in value) return { t: 'float', v: value.doubleValue };
  if ('boolValue' in value) return { t: 'bool', v: value.boolValue };
  if ('arrayValue' in value) {
    const elements = (value.arrayValue.values ?? []).map(anyValueToStatic);
    const types = new Set(elements.map((e) => e.t));
    if (types.size === 1) {
      const [t] = types;
      const arrayType = { int: 'intArray', float: 'floatArray', string: 'stringArray', bool: 'boolArray' }[t];
      if (arrayType) return { t: arrayType, v: elements.map((e) => e.v) };
    }
    return NIL;
  }
  return NIL;
}
const NIL = { t: 'nil' };
const TRUE = { t: 'bool', v: true };
const FALSE = { t: 'bool', v: false };

const toMap = (attributes) => new Map(attributes.map(({ key, value }) => [key, anyValueToStatic(value)]));

// Builds the view of one trace from the data set's spans (see dataset.mjs): spans ordered by
// start, span ID, kind; parents; nested-set numbers; child counts; root.
export function buildView(trace, resourceAttributesOf) {
  const spans = trace.spans.map((span) => ({
    span,
    spanId: span.spanId,
    start: BigInt(span.start),
    end: BigInt(span.end),
    attributes: toMap(span.attributes),
    resource: toMap(resourceAttributesOf(span.service)),
    scopeAttributes: toMap(span.scope.attributes),
    events: span.events.map((event) => ({ name: event.name, time: BigInt(event.timeUnixNano), attributes: toMap(event.attributes) })),
    links: span.links.map((link) => ({ traceId: link.traceId, spanId: link.spanId, attributes: toMap(link.attributes) })),
    parent: -1,
    children: [],
    nestedLeft: 0,
    nestedRight: 0,
    nestedParent: 0,
  }));
  spans.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : a.span.kind - b.span.kind));
  const indexById = new Map(spans.map((s, i) => [s.spanId, i]));
  spans.forEach((s, i) => {
    s.index = i;
    s.isRoot = !s.span.parentSpanId;
    if (!s.isRoot && indexById.has(s.span.parentSpanId)) s.parent = indexById.get(s.span.parentSpanId);
  });
  for (const s of spans) if (s.parent >= 0) spans[s.parent].children.push(s.index);
  let counter = 1;
  const walk = (index, parentLeft) => {
    const s = spans[index];
    s.nestedLeft = counter++;
    s.nestedParent = parentLeft;
    for (const child of s.children) walk(child, s.nestedLeft);
    s.nestedRight = counter++;
  };
  for (const s of spans) if (s.isRoot) walk(s.index, -1);
  const rootIndex = spans.findIndex((s) => s.isRoot);
  let start = spans[0].start;
  let end = spans[0].end;
  for (const s of spans) { if (s.start < start) start = s.start; if (s.end > end) end = s.end; }
  const root = rootIndex >= 0 ? spans[rootIndex] : null;
  const rootService = root?.resource.get('service.name');
  return {
    traceId: trace.traceId,
    placement: trace.placement,
    spans,
    start,
    end,
    duration: end - start,
    root,
    rootServiceName: root ? (rootService?.t === 'string' ? rootService.v : '') : null,
    rootSpanName: root ? root.span.name : null,
  };
}

// ---------------------------------------------------------------------------------------
// Evaluation

class EvaluationError extends Error {}

function spanDuration(s) { return s.end > s.start ? Number(s.end - s.start) : 0; }
const STATUS_OF_OTLP = { 0: 2, 1: 1, 2: 0 }; // OTLP code -> Tempo's Status enum (error 0, ok 1, unset 2)

function lookupAttribute(node, ctx) {
  const { span } = ctx;
  switch (node.scope) {
    case 'span': return span.attributes.get(node.name) ?? NIL;
    case 'resource': return span.resource.get(node.name) ?? NIL;
    case 'none': return span.attributes.get(node.name) ?? span.resource.get(node.name) ?? NIL;
    case 'event': return ctx.event ? ctx.event.attributes.get(node.name) ?? NIL : NIL;
    case 'link': return ctx.link ? ctx.link.attributes.get(node.name) ?? NIL : NIL;
    case 'instrumentation': return span.scopeAttributes.get(node.name) ?? NIL;
    default: throw new Error(`scope ${node.scope}`);
  }
}

function lookupIntrinsic(name, ctx) {
  const { span, view } = ctx;
  switch (name) {
    case 'duration': return { t: 'duration', v: spanDuration(span) };
    case 'name': return { t: 'string', v: span.span.name };
    case 'status': return { t: 'status', v: STATUS_OF_OTLP[span.span.status?.code ?? 0] };
    case 'statusMessage': return { t: 'string', v: span.span.status?.message ?? '' };
    case 'kind': return { t: 'kind', v: span.span.kind };
    case 'rootName': return view.root ? { t: 'string', v: view.rootSpanName } : NIL;
    case 'rootServiceName': return view.root ? { t: 'string', v: view.rootServiceName } : NIL;
    case 'traceDuration': return { t: 'duration', v: Number(view.duration) };
    case 'nestedSetLeft': return { t: 'int', v: span.nestedLeft };
    case 'nestedSetRight': return { t: 'int', v: span.nestedRight };
    case 'nestedSetParent': return { t: 'int', v: span.nestedParent };
    case 'trace:id': return { t: 'string', v: view.traceId };
    case 'span:id': return { t: 'string', v: span.spanId };
    case 'span:parentID': return span.span.parentSpanId ? { t: 'string', v: span.span.parentSpanId } : NIL;
    case 'span:childCount': return { t: 'int', v: span.children.length };
    case 'event:name': return ctx.event ? { t: 'string', v: ctx.event.name } : NIL;
    case 'event:timeSinceStart': return ctx.event ? { t: 'duration', v: Number(ctx.event.time - span.start) } : NIL;
    case 'link:traceID': return ctx.link ? { t: 'string', v: ctx.link.traceId } : NIL;
    case 'link:spanID': return ctx.link ? { t: 'string', v: ctx.link.spanId } : NIL;
    case 'instrumentation:name': return { t: 'string', v: span.span.scope.name };
    case 'instrumentation:version': return { t: 'string', v: span.span.scope.version };
    default: throw new Error(`intrinsic ${name}`);
  }
}

const asFloat = (s) => (NUMERIC.has(s.t) ? s.v : NaN);

function staticEquals(a, b) {
  if (a.t === 'nil' || b.t === 'nil') return false;
  if (NUMERIC.has(a.t) && NUMERIC.has(b.t)) return a.v === b.v;
  if (a.t !== b.t) return false;
  if (a.t in ARRAY_ELEMENT) return a.v.length === b.v.length && a.v.every((x, i) => x === b.v[i]);
  return a.v === b.v;
}

function compareStrings(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

function applyScalarOp(op, l, r) {
  const lt = l.t;
  const rt = r.t;
  if (!isMatchingOperand(lt, rt) || !binaryTypeValid(op, lt) || !binaryTypeValid(op, rt)) return FALSE;
  if (lt === 'string' && rt === 'string') {
    switch (op) {
      case '<': return { t: 'bool', v: compareStrings(l.v, r.v) < 0 };
      case '<=': return { t: 'bool', v: compareStrings(l.v, r.v) <= 0 };
      case '>': return { t: 'bool', v: compareStrings(l.v, r.v) > 0 };
      case '>=': return { t: 'bool', v: compareStrings(l.v, r.v) >= 0 };
      case '=~': return { t: 'bool', v: compileRegex(r.v).test(l.v) };
      case '!~': return { t: 'bool', v: !compileRegex(r.v).test(l.v) };
      default: break;
    }
  } else if (lt === 'int' && rt === 'int') {
    switch (op) {
      case '+': return { t: 'int', v: l.v + r.v };
      case '-': return { t: 'int', v: l.v - r.v };
      case '*': return { t: 'int', v: l.v * r.v };
      case '/': if (r.v === 0) throw new EvaluationError('integer divide by zero'); return { t: 'int', v: Math.trunc(l.v / r.v) };
      case '%': if (r.v === 0) throw new EvaluationError('integer divide by zero'); return { t: 'int', v: l.v % r.v };
      case '<': return { t: 'bool', v: l.v < r.v };
      case '<=': return { t: 'bool', v: l.v <= r.v };
      case '>': return { t: 'bool', v: l.v > r.v };
      case '>=': return { t: 'bool', v: l.v >= r.v };
      case '^': throw new EvaluationError('integer power is not used by the corpus'); // Tempo computes rhs^lhs
      default: break;
    }
  } else if (lt === 'bool' && rt === 'bool') {
    if (op === '&&') return { t: 'bool', v: l.v && r.v };
    if (op === '||') return { t: 'bool', v: l.v || r.v };
  } else if (lt in ARRAY_ELEMENT || rt in ARRAY_ELEMENT) {
    if (lt in ARRAY_ELEMENT && rt in ARRAY_ELEMENT) throw new EvaluationError('array against array');
    let array = r;
    let scalar = l;
    let elementOp = op;
    let flip = false;
    if (lt in ARRAY_ELEMENT) {
      array = l; scalar = r;
      elementOp = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' }[op] ?? op;
      flip = op === '=~' || op === '!~';
    }
    if (!BOOLEAN_OPS.has(op)) throw new EvaluationError('arithmetic on an array');
    const matchAll = elementOp === '!=' || elementOp === '!~';
    let matches = 0;
    for (const value of array.v) {
      const element = { t: ARRAY_ELEMENT[array.t], v: value };
      const result = flip ? applyScalarOp(elementOp, element, scalar) : applyScalarOp(elementOp, scalar, element);
      if (result.t === 'bool' && result.v) matches += 1;
    }
    return { t: 'bool', v: matchAll ? matches === array.v.length : matches > 0 };
  }
  switch (op) {
    case '+': return { t: 'float', v: asFloat(l) + asFloat(r) };
    case '-': return { t: 'float', v: asFloat(l) - asFloat(r) };
    case '*': return { t: 'float', v: asFloat(l) * asFloat(r) };
    case '/': return { t: 'float', v: asFloat(l) / asFloat(r) };
    case '%': return { t: 'float', v: asFloat(l) % asFloat(r) };
    case '^': return { t: 'float', v: asFloat(l) ** asFloat(r) };
    case '<': return { t: 'bool', v: asFloat(l) < asFloat(r) };
    case '<=': return { t: 'bool', v: asFloat(l) <= asFloat(r) };
    case '>': return { t: 'bool', v: asFloat(l) > asFloat(r) };
    case '>=': return { t: 'bool', v: asFloat(l) >= asFloat(r) };
    case '=': return { t: 'bool', v: staticEquals(l, r) };
    case '!=': return { t: 'bool', v: l.t !== 'nil' && r.t !== 'nil' && !staticEquals(l, r) };
    default: throw new EvaluationError(`unexpected operator ${op}`);
  }
}

function evaluateField(node, ctx) {
  switch (node.k) {
    case 'static': return node;
    case 'attr': return lookupAttribute(node, ctx);
    case 'intr': return lookupIntrinsic(node.name, ctx);
    case 'exists': {
      const value = evaluateField(node.expression, ctx);
      return { t: 'bool', v: node.negate ? value.t === 'nil' : value.t !== 'nil' };
    }
    case 'un': {
      const value = evaluateField(node.e, ctx);
      if (node.op === '!') {
        if (value.t !== 'bool') throw new EvaluationError(`! of a ${value.t}`);
        return { t: 'bool', v: !value.v };
      }
      if (!NUMERIC.has(value.t)) throw new EvaluationError(`- of a ${value.t}`);
      return { t: value.t, v: -value.v };
    }
    case 'bin': {
      const l = evaluateField(node.l, ctx);
      if (node.op === '&&' && l.t === 'bool' && !l.v) return FALSE;
      if (node.op === '||' && l.t === 'bool' && l.v) return TRUE;
      const r = evaluateField(node.r, ctx);
      return applyScalarOp(node.op, l, r);
    }
    default: throw new Error(`cannot evaluate ${node.k}`);
  }
}

function usesScope(node, scope) {
  switch (node.k) {
    case 'attr': return node.scope === scope;
    case 'intr': return node.name.startsWith(`${scope}:`);
    case 'exists': return usesScope(node.expression, scope);
    case 'un': return usesScope(node.e, scope);
    case 'bin': return usesScope(node.l, scope) || usesScope(node.r, scope);
    default: return false;
  }
}

// A span matches a filter when the expression is true for it; expressions about events (or
// links) are true when they hold for at least one of the span's events (links), taken one at
// a time, so `event:name = "retry" && event.attempt > 1` asks about one event.
function spanMatches(filter, span, view) {
  const expression = filter.expression;
  filter.eventScoped ??= usesScope(expression, 'event');
  filter.linkScoped ??= usesScope(expression, 'link');
  const events = filter.eventScoped && span.events.length ? span.events : [null];
  const links = filter.linkScoped && span.links.length ? span.links : [null];
  for (const event of events) {
    for (const link of links) {
      const result = evaluateField(expression, { span, view, event, link });
      if (result.t === 'bool' && result.v) return true;
    }
  }
  return false;
}

const sortIndices = (indices) => [...new Set(indices)].sort((a, b) => a - b);

function ancestorsOf(view, index) {
  const result = [];
  for (let p = view.spans[index].parent; p >= 0; p = view.spans[p].parent) result.push(p);
  return result;
}

// The structural operators over one spanset on each side. Returns span indices.
function structural(op, view, lhs, rhs) {
  const inL = new Set(lhs);
  const base = op.replace(/^[!&]/, '');
  const negated = op.startsWith('!');
  const union = op.startsWith('&');
  const parentOf = (i) => view.spans[i].parent;
  const participants = []; // lhs spans that took part, for the union forms
  const holds = (r) => {
    const found = [];
    switch (base) {
      case '>': if (parentOf(r) >= 0 && inL.has(parentOf(r))) found.push(parentOf(r)); break;
      case '<': for (const child of view.spans[r].children) if (inL.has(child)) found.push(child); break;
      case '>>': for (const a of ancestorsOf(view, r)) if (inL.has(a)) found.push(a); break;
      case '<<': for (const l of lhs) if (ancestorsOf(view, l).includes(r)) found.push(l); break;
      case '~': if (parentOf(r) >= 0) for (const sibling of view.spans[parentOf(r)].children) if (sibling !== r && inL.has(sibling)) found.push(sibling); break;
      default: throw new Error(`operator ${op}`);
    }
    return found;
  };
  const result = [];
  for (const r of rhs) {
    const found = holds(r);
    if (negated ? found.length === 0 : found.length > 0) {
      result.push(r);
      if (union) participants.push(...found);
    }
  }
  return sortIndices(union ? result.concat(participants) : result);
}

function evaluatePipelineElements(elements, input, view) {
  let sets = input;
  for (const element of elements) {
    sets = evaluateElement(element, sets, view);
    if (sets.length === 0) return [];
  }
  return sets;
}

function evaluateSpansetNode(node, input, view) {
  if (node.k === 'filter') {
    const output = [];
    for (const set of input) {
      const spans = set.spans.filter((i) => spanMatches(node, view.spans[i], view));
      if (spans.length) output.push({ spans, attributes: set.attributes });
    }
    return output;
  }
  if (node.k === 'pipeline') return evaluatePipelineElements(node.elements, input, view);
  if (node.k === 'spansetOp') {
    const output = [];
    for (const set of input) {
      const lhs = evaluateSpansetNode(node.l, [set], view);
      const rhs = evaluateSpansetNode(node.r, [set], view);
      const all = (sets) => sets.flatMap((s) => s.spans);
      let spans;
      if (node.op === '&&') spans = lhs.length && rhs.length ? sortIndices(all(lhs).concat(all(rhs))) : [];
      else if (node.op === '||') spans = lhs.length || rhs.length ? sortIndices(all(lhs).concat(all(rhs))) : [];
      else {
        if (rhs.length === 0) continue;
        if (lhs.length > 1 || rhs.length > 1) throw new EvaluationError('spanset operators are not supported for multiple spansets per trace');
        if (rhs[0].spans.length === 0) continue;
        spans = structural(node.op, view, lhs.length ? lhs[0].spans : [], rhs[0].spans);
      }
      if (spans.length) output.push({ spans, attributes: set.attributes });
    }
    return output;
  }
  throw new Error(`cannot evaluate ${node.k}`);
}

function evaluateAggregate(aggregate, set, view) {
  if (aggregate.fn === 'count') return { t: 'int', v: set.spans.length };
  const values = [];
  for (const i of set.spans) {
    const value = evaluateField(aggregate.expression, { span: view.spans[i], view });
    if (value.t !== 'nil') values.push(value);
  }
  if (values.length === 0) return null;
  switch (aggregate.fn) {
    case 'sum': case 'avg': {
      // Tempo adds only values of the first value's type.
      const first = values[0];
      let sum = 0;
      for (const value of values) if (value.t === first.t) sum += value.v;
      if (aggregate.fn === 'sum') return { t: first.t, v: sum };
      if (first.t === 'duration') return { t: 'duration', v: Math.trunc(sum / values.length) };
      return { t: 'float', v: sum / values.length };
    }
    case 'min': case 'max': {
      let best = values[0];
      for (const value of values.slice(1)) {
        const c = compareStatics(value, best);
        if ((aggregate.fn === 'max' && c > 0) || (aggregate.fn === 'min' && c < 0)) best = value;
      }
      return best;
    }
    default: throw new Error(aggregate.fn);
  }
}

const TYPE_ORDER = ['nil', 'spanset', 'attribute', 'int', 'float', 'string', 'bool', 'intArray', 'floatArray', 'stringArray', 'boolArray', 'duration', 'status', 'kind'];
function compareStatics(a, b) {
  if (a.t !== b.t) {
    if (NUMERIC.has(a.t) && NUMERIC.has(b.t)) return Math.sign(a.v - b.v);
    return Math.sign(TYPE_ORDER.indexOf(a.t) - TYPE_ORDER.indexOf(b.t));
  }
  if (a.t === 'string') return compareStrings(a.v, b.v);
  if (typeof a.v === 'number') return Math.sign(a.v - b.v);
  if (typeof a.v === 'boolean') return Number(a.v) - Number(b.v);
  return 0;
}

function staticKey(s) { return `${s.t}:${JSON.stringify(s.v ?? null)}`; }

function evaluateElement(element, input, view) {
  switch (element.kind) {
    case 'expr': return evaluateSpansetNode(element.node, input, view);
    case 'select': return input;
    case 'coalesce': return [{ spans: sortIndices(input.flatMap((s) => s.spans)), attributes: [] }];
    case 'by': {
      const output = [];
      for (const set of input) {
        const groups = new Map();
        for (const i of set.spans) {
          const value = evaluateField(element.expression, { span: view.spans[i], view });
          const key = staticKey(value);
          if (!groups.has(key)) groups.set(key, { spans: [], attributes: [...set.attributes, { key: `by(${element.text ?? ''})`, node: element.expression, value }] });
          groups.get(key).spans.push(i);
        }
        output.push(...groups.values());
      }
      return output;
    }
    case 'scalarFilter': {
      const output = [];
      for (const set of input) {
        const value = evaluateAggregate(element.lhs, set, view);
        if (!value) continue;
        const result = applyScalarOp(element.op, value, element.rhs);
        if (result.t === 'bool' && result.v) output.push({ spans: set.spans, attributes: [...set.attributes, { key: element.lhs.text, value }] });
      }
      return output;
    }
    default: throw new Error(`cannot evaluate ${element.kind}`);
  }
}

// Attaches the source text of by(...) expressions, which Tempo uses as the group's key.
function annotateGroupKeys(query) {
  const text = query.text;
  const re = /\bby\s*\(/g;
  const starts = [];
  let match;
  while ((match = re.exec(text))) starts.push(match.index + match[0].length);
  const visit = (node) => {
    if (!node) return;
    if (node.k === 'pipeline') node.elements.forEach(visitElement);
    else if (node.k === 'spansetOp') { visit(node.l); visit(node.r); }
  };
  const groups = [];
  const visitElement = (element) => {
    if (element.kind === 'by') groups.push(element);
    if (element.kind === 'expr') visit(element.node);
  };
  visit(query.root);
  groups.forEach((group, i) => {
    const start = starts[i];
    let depth = 1;
    let end = start;
    while (end < text.length && depth > 0) { if (text[end] === '(') depth += 1; if (text[end] === ')') depth -= 1; end += 1; }
    group.text = text.slice(start, end - 1).trim();
  });
}

// Evaluates a parsed query over one trace view. Returns the spansets (spans as view indices,
// ascending), empty when the trace does not match.
export function evaluateTrace(query, view) {
  if (!query.groupKeysAnnotated) { annotateGroupKeys(query); query.groupKeysAnnotated = true; }
  const input = [{ spans: view.spans.map((s) => s.index), attributes: [] }];
  const sets = evaluateSpansetNode(query.root, input, view);
  return sets.filter((set) => set.spans.length > 0).map((set) => ({ ...set, spans: sortIndices(set.spans) }));
}

// ---------------------------------------------------------------------------------------
// Searching a whole data set, as /api/search answers

export function trimTraceId(traceId) {
  const trimmed = traceId.replace(/^0+/, '');
  return trimmed === '' ? '0' : trimmed;
}

// Every matching trace, newest first (ties: trace ID ascending), with what the API shows.
export function searchViews(query, views) {
  const matches = [];
  for (const view of views) {
    const spansets = evaluateTrace(query, view);
    if (spansets.length === 0) continue;
    matches.push({ view, spansets });
  }
  matches.sort((a, b) => (a.view.start > b.view.start ? -1 : a.view.start < b.view.start ? 1
    : trimTraceId(a.view.traceId) < trimTraceId(b.view.traceId) ? -1 : trimTraceId(a.view.traceId) > trimTraceId(b.view.traceId) ? 1 : 0));
  return matches;
}

export function serviceStats(view) {
  const stats = {};
  for (const s of view.spans) {
    const service = s.resource.get('service.name');
    const name = service?.t === 'string' ? service.v : '';
    stats[name] ??= { spanCount: 0, errorCount: 0 };
    stats[name].spanCount += 1;
    if ((s.span.status?.code ?? 0) === 2) stats[name].errorCount += 1;
  }
  return stats;
}

// Go's time.Duration.String(), which Tempo uses for durations shown as strings.
export function goDurationString(ns) {
  if (ns === 0) return '0s';
  const negative = ns < 0;
  let n = Math.abs(ns);
  let out;
  if (n < 1e3) out = `${n}ns`;
  else if (n < 1e6) out = `${trimFraction(n / 1e3, 3)}µs`;
  else if (n < 1e9) out = `${trimFraction(n / 1e6, 6)}ms`;
  else {
    const hours = Math.floor(n / 3600e9); n -= hours * 3600e9;
    const minutes = Math.floor(n / 60e9); n -= minutes * 60e9;
    const seconds = trimFraction(n / 1e9, 9);
    out = hours ? `${hours}h${minutes}m${seconds}s` : minutes ? `${minutes}m${seconds}s` : `${seconds}s`;
  }
  return negative ? `-${out}` : out;
}
function trimFraction(value, digits) {
  return value.toFixed(digits).replace(/\.?0+$/, '');
}

// A Static as Tempo puts it in an OTLP AnyValue in search results.
export function staticToAnyValue(s) {
  switch (s.t) {
    case 'string': return { stringValue: s.v };
    case 'int': return { intValue: String(s.v) };
    case 'float': return { doubleValue: s.v };
    case 'bool': return { boolValue: s.v };
    case 'duration': return { stringValue: goDurationString(s.v) };
    case 'status': return { stringValue: ['error', 'ok', 'unset'][s.v] };
    case 'kind': return { stringValue: ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'][s.v] };
    default: return null;
  }
}

export { EvaluationError, STATUS_VALUES, KIND_VALUES };

// ---------------------------------------------------------------------------------------
// For the metrics reference (metrics_reference.mjs): one field expression evaluated on one
// span, outside any event or link (by() values, a function's attribute, compare()'s filter).

export function evaluateSpanField(node, span, view) {
  return evaluateField(node, { span, view, event: null, link: null });
}
