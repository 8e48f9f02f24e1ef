// The one undo rule (src/engine/undo.ts) on journals built by hand, for the cases an in-process run
// cannot produce (a process killed mid-step, a rollback that already ran partly) and the table of
// step shapes: kind undo, override, `rollback: none`, read-only, no undo at all.
import { describe, expect, it } from 'vitest';
import type { StepKind } from '../../../src/engine/types.js';
import { undoList } from '../../../src/engine/undo.js';
import type { JournalRecord } from '../../../src/journal/journal.js';
import { reconstruct } from '../../../src/journal/state.js';
import type { Step } from '../../../src/runbook/schema.js';

const base = { summary: '', params: {} as never, describe: () => [], apply: async () => undefined };
const KINDS: Record<string, StepKind> = {
  snap: { ...base, kind: 'snap', snapshot: async () => ({}), undo: async () => undefined },
  nosnap: { ...base, kind: 'nosnap', undo: async () => undefined },
  noundo: { ...base, kind: 'noundo', snapshot: async () => ({}) },
  read: { ...base, kind: 'read', readOnly: true },
};
const kindOf = (k: string) => KINDS[k];

let seq = 0;
const rec = (type: string, data: Record<string, unknown> = {}): JournalRecord => ({
  seq: ++seq,
  ts: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
  type,
  by: 'op@host',
  runbookSha256: 'x',
  prev: '',
  hash: '',
  ...data,
});

function journal(steps: Step[], body: JournalRecord[]): JournalRecord[] {
  seq = 0;
  const start = rec('run-start', {
    v: 2,
    runId: 'r',
    mode: 'run',
    runbook: { file: '/rb', name: 'rb', sha256: 'x' },
    vars: {},
    steps: steps.map((s) => ({ id: s.id, kind: s.kind })),
  });
  return [start, ...body];
}
const done = (id: string) => [
  rec('step-start', { stepId: id }),
  rec('snapshot', { stepId: id, snapshot: {} }),
  rec('step-done', { stepId: id, outputs: {}, durationMs: 1 }),
];
const list = (steps: Step[], body: JournalRecord[]) =>
  undoList(reconstruct(journal(steps, body)), steps, kindOf).map((u) => `${u.stepId}:${u.via}:${u.ranTo}`);

describe('undoList', () => {
  const steps: Step[] = [
    { id: 'a', kind: 'snap' },
    { id: 'o', kind: 'noundo', rollback: { kind: 'nosnap' } },
    { id: 'n', kind: 'snap', rollback: 'none' },
    { id: 'r', kind: 'read' },
    { id: 'x', kind: 'noundo' },
    { id: 'b', kind: 'nosnap' },
  ] as Step[];

  it('done steps, last first, each with how it is undone; read-only and undo-less steps are not listed', () => {
    const body = steps.flatMap((s) => done(s.id));
    expect(list(steps, body)).toEqual(['b:kind:done', 'n:none:done', 'o:override:done', 'a:kind:done']);
  });

  it('killed mid-step (in-flight after its snapshot): undone, whether or not its kind takes snapshots', () => {
    const inflight = (id: string) => [
      rec('step-start', { stepId: id }),
      rec('snapshot', { stepId: id, snapshot: null }),
    ];
    expect(list(steps, [...done('a'), ...inflight('o')])).toEqual(['o:override:partial', 'a:kind:done']);
    const s2 = [
      { id: 'a', kind: 'snap' },
      { id: 'b', kind: 'nosnap' },
    ] as Step[];
    expect(list(s2, [...done('a'), ...inflight('b')])).toEqual(['b:kind:partial', 'a:kind:done']);
    // Killed before its snapshot was journaled: apply never started.
    expect(list(s2, [...done('a'), rec('step-start', { stepId: 'b' })])).toEqual(['a:kind:done']);
  });

  it('a failed step: undone when its kind restores a snapshot or its apply had returned', () => {
    const s2 = [
      { id: 'a', kind: 'snap' },
      { id: 'b', kind: 'nosnap' },
    ] as Step[];
    const failed = (applied: boolean) => [
      rec('step-start', { stepId: 'b' }),
      rec('snapshot', { stepId: 'b', snapshot: null }),
      rec('step-failed', {
        stepId: 'b',
        error: { code: 'X', message: 'x' },
        durationMs: 1,
        ...(applied ? { applied } : {}),
      }),
    ];
    expect(list(s2, [...done('a'), ...failed(false)])).toEqual(['a:kind:done']);
    expect(list(s2, [...done('a'), ...failed(true)])).toEqual(['b:kind:partial', 'a:kind:done']);
  });

  it('after a partial rollback: undone steps drop out, a failed undo stays with what it first ran to', () => {
    const s2 = [
      { id: 'a', kind: 'snap' },
      { id: 'b', kind: 'snap' },
      { id: 'c', kind: 'snap' },
    ] as Step[];
    const body = [
      ...done('a'),
      ...done('b'),
      ...done('c'),
      rec('rollback-start', { reason: 'r', steps: ['c', 'b', 'a'] }),
      rec('undo-start', { stepId: 'c' }),
      rec('undo-done', { stepId: 'c', durationMs: 1 }),
      rec('undo-start', { stepId: 'b' }),
      rec('undo-failed', { stepId: 'b', error: { code: 'UNDO_UNSAFE_NEW_WRITES', message: 'm' } }),
      rec('rollback-stopped', { stepId: 'b', reason: 'm', notUndone: ['a'] }),
    ];
    expect(list(s2, body)).toEqual(['b:kind:done', 'a:kind:done']);
  });
});
