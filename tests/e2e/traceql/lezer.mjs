// Grafana's own TraceQL grammar (@grafana/lezer-traceql, the editor's parser) as a cross-check
// of the corpus: every valid query must parse with it without an error node, except for the
// features that grammar does not know (listed, each with the reason).

import { parser } from '@grafana/lezer-traceql';

// Valid TraceQL that @grafana/lezer-traceql 1.0.0 does not parse. Each entry is a pattern
// over the query text and why the editor grammar refuses it.
export const LEZER_GAPS = [
  { pattern: /nestedSet(Left|Right|Parent)/, why: 'nestedSetLeft/Right/Parent are not in the editor grammar' },
  { pattern: /span:childCount/, why: 'span:childCount (Tempo 2.10) is not in the editor grammar' },
];

export function lezerErrors(text) {
  const tree = parser.parse(text);
  const errors = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
    },
  });
  return errors;
}

export function lezerAccepts(text) {
  return lezerErrors(text).length === 0;
}

export function lezerGapFor(text) {
  return LEZER_GAPS.find((gap) => gap.pattern.test(text)) ?? null;
}
