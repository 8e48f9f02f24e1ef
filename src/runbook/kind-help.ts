// `cutover kinds NAME`: one kind explained as a runbook author needs it (what it does, whether a
// rollback undoes it, its `with:` keys with type, default and meaning, its outputs).
import type { StepKind } from '../engine/types.js';
import { type KindParam, kindParams } from './json-schema.js';

export interface KindHelp {
  kind: string;
  summary: string;
  readOnly: boolean;
  writes?: string;
  undo: string;
  params: KindParam[];
  outputs: string[];
}

export function kindHelp(k: StepKind): KindHelp {
  return {
    kind: k.kind,
    summary: k.summary,
    readOnly: !!k.readOnly,
    ...(k.writes ? { writes: k.writes.summary } : {}),
    undo: k.readOnly
      ? 'reads only: usable as a before/after check, nothing to undo'
      : k.undo
        ? `a rollback undoes it from its journaled snapshot${k.keepsRollbackSafe ? '; while healthy it makes a rollback after the point of no return safe' : ''}`
        : 'no undo of its own: give the step a `rollback:` (or it is listed for a human)',
    params: kindParams(k),
    outputs: [...(k.outputs ?? [])],
  };
}

export function renderKindHelp(h: KindHelp): string {
  const out = [h.kind, `  ${h.summary}`, `  ${h.undo}`];
  if (h.writes) out.push(`  writes: ${h.writes}`);
  out.push('', h.params.length ? 'with:' : 'with: (nothing)');
  const width = Math.max(0, ...h.params.map((p) => p.name.length)) + 2;
  for (const p of h.params) {
    const how = p.required
      ? 'required'
      : p.default !== undefined
        ? `default ${JSON.stringify(p.default)}`
        : 'optional';
    out.push(`  ${p.name.padEnd(width)}${p.type} (${how})`);
    if (p.description) out.push(`  ${' '.repeat(width)}${p.description}`);
  }
  if (h.outputs.length) {
    out.push('', 'outputs (${steps.<id>.outputs.<name>}):');
    out.push(`  ${h.outputs.join(', ')}`);
  }
  return out.join('\n');
}
