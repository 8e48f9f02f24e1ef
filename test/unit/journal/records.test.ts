// The journal's record union (records.ts) and the one reducer (state.ts): every type has a sample
// here (the mapped type below fails tsc when a type is added without one), each goes through a real
// journal and reduce; versions; and status telling whether maintenance is on after undos.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal, readJournal } from '../../../src/journal/journal.js';
import {
  type EntryData,
  JOURNAL_VERSION,
  RECORD_TYPES,
  type RecordType,
} from '../../../src/journal/records.js';
import { Redactor } from '../../../src/journal/redact.js';
import { reconstruct } from '../../../src/journal/state.js';
import { renderStatus, statusOf } from '../../../src/report/status.js';

const SHA = 'b'.repeat(64);
const err = { code: 'X', message: 'x' };
const start: EntryData<'run-start'> = {
  v: JOURNAL_VERSION,
  runId: 'r',
  mode: 'run',
  runbook: { file: '/rb.yaml', name: 'rb', sha256: SHA },
  vars: {},
  budgetMs: 60_000,
  steps: [
    { id: 'enter', kind: 'maintenance.enter' },
    { id: 's', kind: 'shell.run' },
  ],
};

/** One record of every type, in an order a run could write them. */
const samples: { [K in RecordType]: EntryData<K> } = {
  'run-start': start,
  'run-resume': {},
  gate: { stepId: 's', decision: 'approved', via: '--yes' },
  'step-start': { stepId: 's', kind: 'shell.run', inputs: {} },
  snapshot: { stepId: 's', snapshot: null },
  'step-retry': { stepId: 's', attempt: 1, delayMs: 1, error: err },
  'step-reconciled': { stepId: 's', applied: true },
  check: { stepId: 's', phase: 'after', check: 'c', ok: true },
  plan: { stepId: 's', lines: [], recorded: [] },
  'plan-check-deferred': { stepId: 's', error: err, durationMs: 1 },
  'preflight-failed': { stepId: 's', error: err },
  warning: { stepId: 's', message: 'w' },
  maintenance: { state: 'entered', budgetMs: 60_000 },
  'step-done': { stepId: 's', outputs: {}, durationMs: 1 },
  'point-of-no-return': { stepId: 's' },
  'step-failed': { stepId: 's', error: { ...err, details: { a: 1 } }, durationMs: 1 },
  'rollback-start': { reason: 'r', steps: ['s'], undo: [{ stepId: 's', via: 'kind' }] },
  'undo-start': { stepId: 's', via: 'kind' },
  'undo-done': { stepId: 's', durationMs: 1 },
  'undo-failed': { stepId: 's', error: err, guardsData: true },
  'undo-skipped': { stepId: 's', reason: 'rollback: none' },
  'rollback-stopped': { stepId: 's', reason: 'refused', notUndone: ['enter'] },
  'output-redirected': { cause: 'SIGHUP', log: '/run/output.log' },
  'run-end': { status: 'rollback-incomplete', exitCode: 3, message: 'm', durationMs: 1, leftovers: [] },
  rehearsal: { result: {} },
};

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function journalOf(entries: [RecordType, unknown][]): string {
  dir = mkdtempSync(join(tmpdir(), 'cutover-records-'));
  const j = Journal.open(dir, SHA, new Redactor());
  for (const [type, data] of entries) j.append(type, data as EntryData<typeof type>);
  j.close();
  return dir;
}

describe('journal records', () => {
  it('the list of types is the union, and reduce takes every one through a real journal', () => {
    expect(Object.keys(samples).sort()).toEqual([...RECORD_TYPES].sort());
    const d = journalOf(Object.entries(samples) as [RecordType, unknown][]);
    const s = reconstruct(readJournal(d));
    expect(s.version).toBe(JOURNAL_VERSION);
    expect(s.rollbackStopped).toEqual({ stepId: 's', reason: 'refused', notUndone: ['enter'] });
    expect(s.outputLog).toBe('/run/output.log');
    expect(s.end).toMatchObject({ status: 'rollback-incomplete', exitCode: 3 });
  });

  it('a type outside the union does not compile', () => {
    const j = { append: Journal.prototype.append } as unknown as Journal;
    const call = () =>
      // @ts-expect-error: 'made-up' is not a record type
      j.append('made-up', {});
    expect(typeof call).toBe('function');
  });

  it('a run dir from before versioning (no v) stays readable; a newer version is refused with what to do', () => {
    const { v: _v, ...v1 } = start;
    expect(reconstruct(readJournal(journalOf([['run-start', v1]]))).version).toBe(1);
    expect(() =>
      reconstruct(readJournal(journalOf([['run-start', { ...start, v: JOURNAL_VERSION + 1 }]]))),
    ).toThrow(/journal format v3 was written by a newer cutover \(this one reads up to v2\)/);
  });
});

describe('status tells whether maintenance is on, as the journal says', () => {
  const entered: [RecordType, unknown] = ['maintenance', { state: 'entered', budgetMs: 60_000 }];
  it('after a rollback undid the enter step: off, never "NOT exited"', () => {
    const d = journalOf([
      ['run-start', start],
      entered,
      ['rollback-start', { reason: 'r', steps: ['enter'] }],
      ['undo-done', { stepId: 'enter', durationMs: 1 }],
      ['maintenance', { state: 'exited', elapsedMs: 5, via: 'undo' }],
      ['run-end', { status: 'rolled-back', exitCode: 1, message: 'm', leftovers: [] }],
    ]);
    const v = statusOf(d);
    expect(v.maintenance.on).toBe(false);
    const text = renderStatus(v);
    expect(text).toMatch(/maintenance off: entered .*, exited /);
    expect(text).not.toMatch(/NOT exited|maintenance ON/);
  });

  it('an undo of the exit step puts it back on; a run killed inside the window is on', () => {
    const undoneExit = journalOf([
      ['run-start', start],
      entered,
      ['maintenance', { state: 'exited', elapsedMs: 5 }],
      ['maintenance', { state: 'entered', via: 'undo' }],
    ]);
    // Both records may carry the same millisecond: "(first entered …)" shows only when they differ.
    expect(renderStatus(statusOf(undoneExit))).toMatch(/maintenance ON since /);
    expect(statusOf(journalOf([['run-start', start], entered])).maintenance).toMatchObject({ on: true });
  });

  it('a stopped rollback is shown with what was left on purpose and what to do next', () => {
    const d = journalOf([
      ['run-start', start],
      ['rollback-start', { reason: 'r', steps: ['s', 'enter'] }],
      [
        'undo-failed',
        {
          stepId: 's',
          error: { code: 'UNDO_UNSAFE_NEW_WRITES', message: 'new took 3 writes' },
          guardsData: true,
        },
      ],
      ['rollback-stopped', { stepId: 's', reason: 'new took 3 writes', notUndone: ['enter'] }],
      ['run-end', { status: 'rollback-incomplete', exitCode: 3, message: 'm', leftovers: [] }],
    ]);
    const v = statusOf(d);
    expect(renderStatus(v)).toMatch(/rollback stopped at s: new took 3 writes\n.*on purpose: enter/);
    expect(v.next).toMatch(/reconcile what the refused undo of "s" names/);
  });
});

describe('status lists what `cutover rollback` would undo, by the engine rule', () => {
  it('from the journal and the run dir runbook copy: overrides named, rollback: none and undone steps left out', () => {
    const steps = [
      { id: 'enter', kind: 'maintenance.enter' },
      { id: 's', kind: 'shell.run' },
    ];
    const d = journalOf([
      ['run-start', { ...start, steps }],
      ['step-start', { stepId: 'enter', kind: 'maintenance.enter', inputs: {} }],
      ['snapshot', { stepId: 'enter', snapshot: {} }],
      ['step-done', { stepId: 'enter', outputs: {}, durationMs: 1 }],
      ['step-start', { stepId: 's', kind: 'shell.run', inputs: {} }],
      ['snapshot', { stepId: 's', snapshot: null }],
      ['step-failed', { stepId: 's', error: { code: 'X', message: 'x' }, durationMs: 1, applied: true }],
      ['run-end', { status: 'halted', exitCode: 3, message: 'm', leftovers: [] }],
    ]);
    writeFileSync(
      join(d, 'runbook.yaml'),
      [
        'version: 1',
        'name: rb',
        'steps:',
        '  - { id: enter, kind: maintenance.enter, with: { command: "true" } }',
        '  - { id: s, kind: shell.run, with: { command: "true" }, rollback: { kind: shell.run, with: { command: "fix" } } }',
      ].join('\n'),
    );
    const v = statusOf(d);
    expect(v.toUndo).toEqual([
      { stepId: 's', via: 'override' },
      { stepId: 'enter', via: 'kind' },
    ]);
    expect(renderStatus(v)).toMatch(/to undo {2}s \(runbook rollback:\), enter/);
    expect(v.next).toMatch(/or undo with `cutover rollback/);
  });
});
