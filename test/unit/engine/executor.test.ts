// The Engine class driven directly, with small step kinds defined here (test-only: they are put in
// the registry for these tests and taken out after). A real journal in a temp dir underneath.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EngineEvent } from '../../../src/engine/events.js';
import { Engine, type EngineOptions } from '../../../src/engine/executor.js';
import { defineKind, type StepKind } from '../../../src/engine/types.js';
import { undoList } from '../../../src/engine/undo.js';
import { StepError } from '../../../src/errors.js';
import { Journal, readJournal, verifyJournal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { reconstruct } from '../../../src/journal/state.js';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { getKind, kinds } from '../../../src/steps/registry.js';

/** What the fake kinds did, in order: "apply:a", "undo:a", ... */
let calls: string[] = [];
/** Per-step failure counters for flaky steps. */
const attempts = new Map<string, number>();

const Params = z
  .object({
    name: z.string(),
    sleepMs: z.number().optional(),
    failTimes: z.number().optional(),
    fail: z.boolean().optional(),
    failVerify: z.boolean().optional(),
    undoFails: z.boolean().optional(),
    undoHangs: z.boolean().optional(),
    undoRefuses: z.boolean().optional(),
    failDetails: z.record(z.string(), z.unknown()).optional(),
    healthy: z.boolean().optional(),
  })
  .strict();
type P = z.infer<typeof Params>;

function fake(
  kind: string,
  extra: Partial<StepKind<P, { before: string }>> = {},
): StepKind<P, { before: string }> {
  return defineKind<P, { before: string }>({
    kind,
    summary: 'test kind',
    params: Params,
    describe: (p) => [`would do ${p.name}`],
    async snapshot(_ctx, p) {
      return { before: `state-of-${p.name}` };
    },
    async apply(ctx, p) {
      calls.push(`apply:${p.name}`);
      if (p.sleepMs) await ctx.sleep(p.sleepMs);
      const n = (attempts.get(p.name) ?? 0) + 1;
      attempts.set(p.name, n);
      if (p.fail || (p.failTimes !== undefined && n <= p.failTimes))
        throw new StepError('FAKE_FAILED', `${p.name} failed (attempt ${n})`, p.failDetails);
      return { n };
    },
    async verify(_ctx, p) {
      if (p.failVerify) throw new StepError('FAKE_VERIFY', `${p.name} did not take`);
    },
    async undo(ctx, p, snapshot) {
      calls.push(`undo:${p.name}:${snapshot.before}`);
      if (p.undoHangs) await ctx.sleep(60_000);
      if (p.undoFails) throw new StepError('FAKE_UNDO', `undo of ${p.name} failed`);
      if (p.undoRefuses)
        throw new StepError(
          'UNDO_UNSAFE_NEW_WRITES',
          `new has taken writes old does not have; not undoing ${p.name}`,
        );
    },
    ...extra,
  });
}

const testKinds: StepKind[] = [
  fake('test.change'),
  // Takes a snapshot but has no undo of its own: the runbook's `rollback:` override is its only undo.
  fake('test.noundo', { undo: undefined }),
  fake('test.read', { readOnly: true }),
  fake('test.guard', { undoUnsafeAfterNewWrites: true }),
  defineKind<P>({
    kind: 'test.fix',
    summary: 'test override',
    params: Params,
    describe: (p) => [`would fix ${p.name}`],
    async apply(_ctx, p) {
      calls.push(`fix:${p.name}`);
    },
  }),
  fake('test.enter', { maintenance: 'enter' }),
  fake('test.exit', { maintenance: 'exit' }),
  fake('test.net', {
    keepsRollbackSafe: true,
    async isRollbackSafe(_ctx, p) {
      return !!p.healthy;
    },
  }),
  // A replication stop whose undo would strand the new side's writes (nothing carries them back).
  fake('test.strands', { undoBlocker: async () => 'new has taken writes old does not have' }),
];

const registry = kinds as Map<string, StepKind>;
beforeAll(() => {
  for (const k of testKinds) registry.set(k.kind, k);
});
afterAll(() => {
  for (const k of testKinds) registry.delete(k.kind);
});

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
  calls = [];
  attempts.clear();
});

type StepDef = { id: string; kind?: string } & Partial<P> & Record<string, unknown>;

/** A runbook of fake steps; step-level keys (retries, pointOfNoReturn...) pass through. */
function yaml(steps: StepDef[], top = ''): string {
  const stepKeys = [
    'retries',
    'retryDelay',
    'timeout',
    'undoTimeout',
    'pointOfNoReturn',
    'approval',
    'rollback',
  ];
  const lines = [`version: 1`, `name: engine-test`, top, 'steps:'];
  for (const s of steps) {
    const w: Record<string, unknown> = { name: s.id };
    const step: Record<string, unknown> = { id: s.id, kind: s.kind ?? 'test.change' };
    for (const [k, v] of Object.entries(s)) {
      if (k === 'id' || k === 'kind') continue;
      if (stepKeys.includes(k)) step[k] = v;
      else w[k] = v;
    }
    step.with = w;
    lines.push(`  - ${JSON.stringify(step)}`);
  }
  return lines.join('\n');
}

async function run(steps: StepDef[], opts: { top?: string; engine?: Partial<EngineOptions> } = {}) {
  dir = mkdtempSync(join(tmpdir(), 'cutover-engine-'));
  const loaded = loadRunbookText(join(dir, 'runbook.yaml'), yaml(steps, opts.top));
  const prepared = prepareRunbook(loaded, { envStrict: true });
  const redactor = new Redactor(prepared.secrets);
  const journal = Journal.open(dir, loaded.sha256, redactor);
  journal.append('run-start', {
    runId: 'test-run',
    mode: 'run',
    runbook: { file: loaded.file, name: prepared.runbook.name, sha256: loaded.sha256 },
    vars: {},
    budgetMs: prepared.budgetMs,
    steps: prepared.runbook.steps.map((s) => ({ id: s.id, kind: s.kind })),
  });
  const events: EngineEvent[] = [];
  const engine = new Engine({
    prepared,
    runId: 'test-run',
    runDir: dir,
    mode: 'run',
    journal,
    redactor,
    emit: (e) => events.push(e),
    ...opts.engine,
  });
  const started = performance.now();
  const result = await engine.execute();
  const wallMs = performance.now() - started;
  journal.close();
  const records = readJournal(dir);
  return {
    result,
    events,
    records,
    wallMs,
    prepared,
    types: (t: string) => records.filter((r) => r.type === t).map((r) => r.stepId),
  };
}

describe('Engine: the happy path', () => {
  it('runs every step in order, journals snapshot before apply, reports timings', async () => {
    const { result, records, types } = await run([{ id: 'a' }, { id: 'b', sleepMs: 30 }, { id: 'c' }]);
    expect(result).toMatchObject({ status: 'succeeded', exitCode: 0, leftovers: [] });
    expect(calls).toEqual(['apply:a', 'apply:b', 'apply:c']);
    expect(types('step-done')).toEqual(['a', 'b', 'c']);
    const snap = records.findIndex((r) => r.type === 'snapshot' && r.stepId === 'b');
    expect(records[snap]!.snapshot).toEqual({ before: 'state-of-b' });
    expect(records[snap + 1]).toMatchObject({ type: 'step-done', stepId: 'b' });
    expect(result.timings.map((t) => t.stepId)).toEqual(['a', 'b', 'c']);
    for (const t of result.timings) expect(t.actionMs).toBeLessThanOrEqual(t.totalMs);
    expect(result.timings[1]!.actionMs).toBeGreaterThanOrEqual(25);
    expect(verifyJournal(dir!).ok).toBe(true);
    expect(reconstruct(records).end).toMatchObject({ status: 'succeeded' });
  });
});

describe('Engine: failure and rollback', () => {
  it('undoes completed steps in reverse from their snapshots, and the failed snapshot step too', async () => {
    const { result, types } = await run([{ id: 'a' }, { id: 'b' }, { id: 'c', fail: true }, { id: 'd' }]);
    expect(result).toMatchObject({ status: 'rolled-back', exitCode: 1 });
    expect(calls).toEqual([
      'apply:a',
      'apply:b',
      'apply:c',
      'undo:c:state-of-c',
      'undo:b:state-of-b',
      'undo:a:state-of-a',
    ]);
    expect(types('undo-done')).toEqual(['c', 'b', 'a']);
  });

  it('attempts every undo even when one fails, and lists what needs a human (exit 3)', async () => {
    const { result, types } = await run([
      { id: 'a' },
      { id: 'b', undoFails: true },
      { id: 'c', failVerify: true },
    ]);
    expect(result.status).toBe('rollback-incomplete');
    expect(result.exitCode).toBe(3);
    expect(types('undo-failed')).toEqual(['b']);
    expect(types('undo-done')).toEqual(['c', 'a']);
    expect(result.leftovers).toEqual([
      {
        stepId: 'b',
        kind: 'test.change',
        problem: 'undo failed: undo of b failed',
        change: ['reverse what the step did: do b'],
      },
    ]);
  });

  it('each undo runs under its own timeout, then the rollback goes on', async () => {
    const { result, types, wallMs } = await run([
      { id: 'a' },
      { id: 'b', undoHangs: true, undoTimeout: '200ms' },
      { id: 'c', fail: true },
    ]);
    expect(result.exitCode).toBe(3);
    expect(types('undo-failed')).toEqual(['b']);
    expect(types('undo-done')).toEqual(['c', 'a']);
    expect(wallMs).toBeLessThan(5000);
  });
});

describe('Engine: retries', () => {
  it('retries with doubling delays until the step passes', async () => {
    const { result, records } = await run([{ id: 'a', failTimes: 2, retries: 3, retryDelay: '20ms' }]);
    expect(result.status).toBe('succeeded');
    expect(calls).toEqual(['apply:a', 'apply:a', 'apply:a']);
    expect(records.filter((r) => r.type === 'step-retry').map((r) => r.delayMs)).toEqual([20, 40]);
  });

  it('never retries after an abort (operator interrupt)', async () => {
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 100);
    const { result, records } = await run(
      [{ id: 'a' }, { id: 'b', sleepMs: 5000, retries: 5, retryDelay: '10ms' }],
      {
        engine: { signal: ctrl.signal },
      },
    );
    expect(result.status).toBe('rolled-back');
    expect(calls.filter((c) => c === 'apply:b')).toHaveLength(1);
    expect(records.filter((r) => r.type === 'step-retry')).toEqual([]);
    expect(records.find((r) => r.type === 'step-failed')).toMatchObject({
      stepId: 'b',
      error: { code: 'ABORTED' },
    });
  });
});

describe('Engine: maintenance budget', () => {
  it('exceeding the budget aborts the step in flight and rolls back, maintenance included', async () => {
    const { result, events, records, wallMs } = await run(
      [
        { id: 'before' },
        { id: 'enter', kind: 'test.enter' },
        { id: 'slow', sleepMs: 10_000 },
        { id: 'exit', kind: 'test.exit' },
      ],
      { top: 'maintenance: { budget: 300ms }' },
    );
    expect(result).toMatchObject({ status: 'rolled-back', exitCode: 1 });
    expect(wallMs).toBeLessThan(3000);
    expect(records.find((r) => r.type === 'step-failed')).toMatchObject({
      stepId: 'slow',
      error: { code: 'MAINTENANCE_BUDGET_EXCEEDED' },
    });
    expect(calls).toEqual([
      'apply:before',
      'apply:enter',
      'apply:slow',
      'undo:slow:state-of-slow',
      'undo:enter:state-of-enter',
      'undo:before:state-of-before',
    ]);
    expect(events.some((e) => e.type === 'maintenance' && e.state === 'over-budget')).toBe(true);
    expect(records.find((r) => r.type === 'maintenance')).toMatchObject({ state: 'entered', budgetMs: 300 });
    expect(result.maintenanceMs).toBeGreaterThanOrEqual(250);
  });

  it('within the budget the clock stops at the exit step', async () => {
    const { result, records } = await run(
      [
        { id: 'enter', kind: 'test.enter' },
        { id: 'work', sleepMs: 50 },
        { id: 'exit', kind: 'test.exit' },
        { id: 'after', sleepMs: 200 },
      ],
      {
        top: 'maintenance: { budget: 10s }',
      },
    );
    expect(result.status).toBe('succeeded');
    expect(result.maintenanceMs).toBeGreaterThanOrEqual(45);
    expect(result.maintenanceMs).toBeLessThan(200);
    expect(records.filter((r) => r.type === 'maintenance').map((r) => r.state)).toEqual([
      'entered',
      'exited',
    ]);
  });
});

describe('Engine: point of no return', () => {
  it('a failure past it undoes nothing and says what is left in place (exit 3)', async () => {
    const { result, types } = await run([
      { id: 'a' },
      { id: 'flip', pointOfNoReturn: true },
      { id: 'c', fail: true },
    ]);
    expect(result).toMatchObject({ status: 'halted', exitCode: 3 });
    expect(calls.filter((c) => c.startsWith('undo'))).toEqual([]);
    expect(types('undo-start')).toEqual([]);
    expect(result.leftovers.map((l) => l.stepId)).toEqual(['a', 'flip', 'c']);
    expect(result.message).toMatch(/Past the point of no return \("flip"\)/);
  });

  it('by default a later failure stops even with a healthy safety net: the data is not moved back on its own', async () => {
    const { result, types } = await run([
      { id: 'net', kind: 'test.net', healthy: true },
      { id: 'flip', pointOfNoReturn: true },
      { id: 'c', fail: true },
    ]);
    expect(result).toMatchObject({ status: 'halted', exitCode: 3 });
    expect(types('undo-start')).toEqual([]);
    expect(result.message).toMatch(/afterPointOfNoReturn: stop/);
  });

  it('with `rollback: { afterPointOfNoReturn: auto }` and a healthy safety net, it rolls back after all', async () => {
    const { result } = await run(
      [
        { id: 'net', kind: 'test.net', healthy: true },
        { id: 'flip', pointOfNoReturn: true },
        { id: 'c', fail: true },
      ],
      { top: 'rollback: { afterPointOfNoReturn: auto }' },
    );
    expect(result.status).toBe('rolled-back');
    expect(calls.filter((c) => c.startsWith('undo')).map((c) => c.split(':')[1])).toEqual([
      'c',
      'flip',
      'net',
    ]);
  });

  it('an unhealthy safety net does not count', async () => {
    const { result } = await run(
      [
        { id: 'net', kind: 'test.net', healthy: false },
        { id: 'flip', pointOfNoReturn: true },
        { id: 'c', fail: true },
      ],
      { top: 'rollback: { afterPointOfNoReturn: auto }' },
    );
    expect(result.status).toBe('halted');
  });
});

describe('Engine: the rollback carries writes back itself (the bridge)', () => {
  const window = (net: Partial<StepDef> = {}): StepDef[] => [
    { id: 'stop', kind: 'test.strands' },
    { id: 'flip', failVerify: true }, // changed, then failed: before its point-of-no-return record
    { id: 'net', kind: 'test.net', healthy: true, ...net },
    { id: 'smoke' },
  ];

  it('a reverse-replication step that never ran is run first, then everything is undone', async () => {
    const { result, types } = await run(window());
    expect(result.status).toBe('rolled-back');
    expect(calls).toEqual([
      'apply:stop',
      'apply:flip',
      'apply:net',
      'undo:net:state-of-net',
      'undo:flip:state-of-flip',
      'undo:stop:state-of-stop',
    ]);
    expect(types('step-done')).toEqual(['stop', 'net']);
  });

  it('not with `rollback: none` on it (left running, it would replicate in a circle): refused, nothing undone', async () => {
    const { result, types } = await run(window({ rollback: 'none' }));
    expect(result).toMatchObject({ status: 'halted', exitCode: 3 });
    expect(result.message).toMatch(/Rollback refused before undoing anything: step "stop"/);
    expect(calls).toEqual(['apply:stop', 'apply:flip']);
    expect(types('undo-start')).toEqual([]);
  });

  it('a bridge that cannot be made healthy: refused, nothing undone, and it says why', async () => {
    const { result } = await run(window({ healthy: false }));
    expect(result).toMatchObject({ status: 'halted', exitCode: 3 });
    expect(result.message).toMatch(/"net" ran but is not healthy/);
    expect(calls.filter((c) => c.startsWith('undo'))).toEqual([]);
  });
});

describe('Engine: gates', () => {
  it('asks at a gate and stops with a rollback when the operator declines', async () => {
    const asked: string[] = [];
    const { result } = await run([{ id: 'a' }, { id: 'b', approval: true }], {
      engine: {
        approve: async (s) => {
          asked.push(s.id);
          return false;
        },
      },
    });
    expect(asked).toEqual(['b']);
    expect(calls).toEqual(['apply:a', 'undo:a:state-of-a']);
    expect(result.status).toBe('rolled-back');
  });

  it('an approved gate is journaled with how it was passed', async () => {
    const { result, records } = await run([{ id: 'a', approval: true }], {
      engine: { approve: async () => true },
    });
    expect(result.status).toBe('succeeded');
    expect(records.find((r) => r.type === 'gate')).toMatchObject({
      stepId: 'a',
      decision: 'approved',
      via: 'prompt',
    });
  });
});

describe('Engine: lifecycle hooks', () => {
  it('a failing before-step hook fails the step before it changes anything', async () => {
    const { result } = await run([{ id: 'a' }, { id: 'b' }], {
      engine: {
        lifecycle: async (event, info) => {
          if (event === 'before-step' && info.stepId === 'b') throw new Error('hook said no');
        },
      },
    });
    expect(result.status).toBe('rolled-back');
    expect(calls).toEqual(['apply:a', 'undo:a:state-of-a']);
  });
});

/**
 * `cutover rollback` on a copy of the run's journal cut just before its rollback-start: what the
 * journal alone says to undo. Returns the undo list it journaled and the kind calls it made.
 */
async function rollbackFromCopy(runDir: string, prepared: ReturnType<typeof prepareRunbook>) {
  const lines = readFileSync(join(runDir, 'journal.jsonl'), 'utf8').split('\n').filter(Boolean);
  const cut = lines.findIndex((l) => JSON.parse(l).type === 'rollback-start');
  const copy = mkdtempSync(join(tmpdir(), 'cutover-engine-copy-'));
  try {
    writeFileSync(join(copy, 'journal.jsonl'), `${lines.slice(0, cut).join('\n')}\n`);
    const redactor = new Redactor(prepared.secrets);
    const journal = Journal.open(copy, prepared.loaded.sha256, redactor);
    const engine = new Engine({
      prepared,
      runId: 'test-run',
      runDir: copy,
      mode: 'run',
      journal,
      redactor,
      emit() {},
    });
    calls = [];
    const result = await engine.rollbackFromJournal(reconstruct(readJournal(copy)), 'from the journal');
    journal.close();
    const start = readJournal(copy).find((r) => r.type === 'rollback-start')!;
    return { result, undo: start.undo, calls: [...calls] };
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

const undoCalls = (c: string[]) => c.filter((x) => x.startsWith('undo:') || x.startsWith('fix:'));

describe('Engine: one undo rule (in-process == from the journal)', () => {
  it('probe: a step whose apply fails halfway, with a rollback override, is undone in-process too', async () => {
    const { result, records, prepared } = await run([
      { id: 'a' },
      { id: 's', kind: 'test.noundo', fail: true, rollback: { kind: 'test.fix', with: { name: 's' } } },
    ]);
    // Before the one rule, in-process skipped the override and said "Rolled back 1 step(s)".
    expect(undoCalls(calls)).toEqual(['fix:s', 'undo:a:state-of-a']);
    expect(result).toMatchObject({ status: 'rolled-back', exitCode: 1 });
    expect(result.message).toMatch(/Rolled back 2 step\(s\)/);
    const inProcess = records.find((r) => r.type === 'rollback-start')!.undo;
    expect(inProcess).toEqual([
      { stepId: 's', via: 'override' },
      { stepId: 'a', via: 'kind' },
    ]);
    const fromJournal = await rollbackFromCopy(dir!, prepared);
    expect(fromJournal.undo).toEqual(inProcess);
    expect(fromJournal.calls).toEqual(['fix:s', 'undo:a:state-of-a']);
  });

  const cases: { name: string; steps: StepDef[]; top?: string; engine?: Partial<EngineOptions> }[] = [
    { name: 'plain failure', steps: [{ id: 'a' }, { id: 'b' }, { id: 'c', fail: true }, { id: 'd' }] },
    {
      name: 'verify fails after apply; an undo fails',
      steps: [{ id: 'a' }, { id: 'b', undoFails: true }, { id: 'c', failVerify: true }],
    },
    {
      name: 'rollback: none, a read-only step, no-undo kinds',
      steps: [
        { id: 'a', rollback: 'none' },
        { id: 'r', kind: 'test.read' },
        { id: 'n', kind: 'test.noundo' },
        { id: 'o', kind: 'test.noundo', rollback: { kind: 'test.fix', with: { name: 'o' } } },
        { id: 'c', kind: 'test.noundo', failVerify: true },
      ],
    },
    {
      name: 'budget exceeded inside the window',
      steps: [
        { id: 'enter', kind: 'test.enter' },
        { id: 'slow', sleepMs: 5000 },
        { id: 'exit', kind: 'test.exit' },
      ],
      top: 'maintenance: { budget: 300ms }',
    },
    {
      name: 'declined gate',
      steps: [{ id: 'a' }, { id: 'b', approval: true }],
      engine: { approve: async () => false },
    },
    {
      name: 'past the point of no return with a healthy net (auto)',
      steps: [
        { id: 'net', kind: 'test.net', healthy: true },
        { id: 'flip', pointOfNoReturn: true },
        { id: 'c', fail: true },
      ],
      top: 'rollback: { afterPointOfNoReturn: auto }',
    },
  ];
  for (const c of cases)
    it(`same list and same undos: ${c.name}`, async () => {
      const { records, prepared } = await run(c.steps, {
        ...(c.top ? { top: c.top } : {}),
        ...(c.engine ? { engine: c.engine } : {}),
      });
      const inProcessCalls = undoCalls(calls);
      const cut = records.findIndex((r) => r.type === 'rollback-start');
      expect(cut).toBeGreaterThan(0);
      const inProcess = records[cut]!.undo;
      // The pure function on the journal prefix, and the real `cutover rollback` path, agree with it.
      const state = reconstruct(records.slice(0, cut));
      expect(
        undoList(state, prepared.runbook.steps, getKind).map(({ stepId, via }) => ({ stepId, via })),
      ).toEqual(inProcess);
      attempts.clear();
      const fromJournal = await rollbackFromCopy(dir!, prepared);
      expect(fromJournal.undo).toEqual(inProcess);
      expect(undoCalls(fromJournal.calls)).toEqual(inProcessCalls);
    });
});

describe('Engine: a data-guarding undo that refuses stops the rollback', () => {
  it('UNDO_UNSAFE_*: the steps before it are left as they are, each named, exit 3', async () => {
    const { result, records, types } = await run([
      { id: 'fence' },
      { id: 'stop', undoRefuses: true },
      { id: 'flip' },
      { id: 'smoke', fail: true },
    ]);
    expect(result).toMatchObject({ status: 'rollback-incomplete', exitCode: 3 });
    // flip was undone before the refusal; fence (reopening the old side) must not be.
    expect(types('undo-done')).toEqual(['smoke', 'flip']);
    expect(types('undo-failed')).toEqual(['stop']);
    expect(calls).not.toContain('undo:fence:state-of-fence');
    expect(records.find((r) => r.type === 'rollback-stopped')).toMatchObject({
      stepId: 'stop',
      notUndone: ['fence'],
    });
    expect(result.leftovers.map((l) => [l.stepId, l.problem.split(':')[0]])).toEqual([
      ['stop', 'undo refused to protect data'],
      ['fence', 'not undone, on purpose'],
    ]);
    expect(result.message).toMatch(
      /Rollback stopped at "stop".*Undone: smoke, flip\. Left as they are, on purpose: fence/,
    );
    expect(reconstruct(records).rollbackStopped).toMatchObject({ stepId: 'stop', notUndone: ['fence'] });
  });

  it('any failure of an undoUnsafeAfterNewWrites kind stops it too; an ordinary failed undo does not', async () => {
    const { result, types } = await run([
      { id: 'a' },
      { id: 'g', kind: 'test.guard', undoFails: true },
      { id: 'b', undoFails: true },
      { id: 'c', fail: true },
    ]);
    expect(result.exitCode).toBe(3);
    // b's plain failure lets the rollback go on to g; g's stops it before a.
    expect(types('undo-failed')).toEqual(['b', 'g']);
    expect(types('undo-done')).toEqual(['c']);
    expect(calls).not.toContain('undo:a:state-of-a');
  });
});

describe('Engine: the journal says whether maintenance is on, undos included', () => {
  it('a rollback that undoes the enter step journals maintenance off', async () => {
    const { records } = await run(
      [
        { id: 'enter', kind: 'test.enter' },
        { id: 'x', fail: true },
      ],
      { top: 'maintenance: { budget: 10s }' },
    );
    const m = records.filter((r) => r.type === 'maintenance').map((r) => [r.state, r.via]);
    expect(m).toEqual([
      ['entered', undefined],
      ['exited', 'undo'],
    ]);
    expect(reconstruct(records).maintenance.on).toBe(false);
  });

  it('`cutover rollback` of a finished run: undoing exit puts maintenance on, undoing enter takes it off', async () => {
    const { result, prepared } = await run([
      { id: 'enter', kind: 'test.enter' },
      { id: 'work' },
      { id: 'exit', kind: 'test.exit' },
    ]);
    expect(result.status).toBe('succeeded');
    const redactor = new Redactor();
    const journal = Journal.open(dir!, prepared.loaded.sha256, redactor);
    const engine = new Engine({
      prepared,
      runId: 'test-run',
      runDir: dir!,
      mode: 'run',
      journal,
      redactor,
      emit() {},
    });
    const r = await engine.rollbackFromJournal(reconstruct(readJournal(dir!)), 'on purpose');
    journal.close();
    expect(r.status).toBe('rolled-back');
    const records = readJournal(dir!);
    const after = records.slice(records.findIndex((x) => x.type === 'rollback-start'));
    expect(
      after.filter((x) => x.type === 'maintenance' || x.type === 'undo-done').map((x) => x.state ?? x.stepId),
    ).toEqual(['exit', 'entered', 'work', 'enter', 'exited']);
    expect(reconstruct(records).maintenance.on).toBe(false);
  });
});

describe('Engine: journal records', () => {
  it('StepError.details reach the step-failed record, redacted like every other field', async () => {
    // A secret is never written in the runbook: the param's default references the environment.
    vi.stubEnv('CUTOVER_TEST_SECRET_PW', 'hunter22');
    const { records } = await run(
      [
        {
          id: 'smoke',
          fail: true,
          failDetails: { http: [{ url: 'https://app', status: 500, body: 'pw=${params.pw}' }] },
        },
      ],
      { top: 'params: { pw: { default: "${env.CUTOVER_TEST_SECRET_PW}", secret: true } }' },
    );
    vi.unstubAllEnvs();
    const failed = records.find((r) => r.type === 'step-failed')!;
    expect(failed.error).toMatchObject({
      code: 'FAKE_FAILED',
      details: { http: [{ url: 'https://app', status: 500, body: 'pw=***' }] },
    });
  });

  it('every record the engine writes is a type of the union, and reduce takes each', async () => {
    const { RECORD_TYPES } = await import('../../../src/journal/records.js');
    const seen = new Set<string>();
    for (const steps of [
      [{ id: 'a' }, { id: 'b', failTimes: 1, retries: 1, retryDelay: '1ms' }, { id: 'c', fail: true }],
      [
        { id: 'enter', kind: 'test.enter' },
        { id: 'flip', pointOfNoReturn: true, approval: true },
        { id: 'exit', kind: 'test.exit' },
      ],
    ] as StepDef[][]) {
      const { records } = await run(steps, { engine: { yes: true } });
      for (const r of records) seen.add(r.type);
      expect(() => reconstruct(records)).not.toThrow();
      rmSync(dir!, { recursive: true, force: true });
    }
    expect([...seen].filter((t) => !(RECORD_TYPES as readonly string[]).includes(t))).toEqual([]);
    expect(seen.size).toBeGreaterThanOrEqual(12);
  });
});

describe('Engine: resume keeps the maintenance budget', () => {
  /**
   * A run killed inside its window: the journal says `enter` is done and maintenance went on, then
   * the process died. After `deadMs`, `cutover resume` (an Engine with `resume`) continues it.
   */
  async function killedThenResumed(deadMs: number, budget: string, steps: StepDef[]) {
    dir = mkdtempSync(join(tmpdir(), 'cutover-engine-'));
    const loaded = loadRunbookText(
      join(dir, 'runbook.yaml'),
      yaml(steps, `maintenance: { budget: ${budget} }`),
    );
    const prepared = prepareRunbook(loaded, { envStrict: true });
    const redactor = new Redactor(prepared.secrets);
    let journal = Journal.open(dir, loaded.sha256, redactor);
    journal.append('run-start', {
      v: 2,
      runId: 'test-run',
      mode: 'run',
      runbook: { file: loaded.file, name: prepared.runbook.name, sha256: loaded.sha256 },
      vars: {},
      budgetMs: prepared.budgetMs,
      steps: prepared.runbook.steps.map((s) => ({ id: s.id, kind: s.kind })),
    });
    journal.append('step-start', { stepId: 'enter', kind: 'test.enter', inputs: {} });
    journal.append('snapshot', { stepId: 'enter', snapshot: { before: 'state-of-enter' } });
    journal.append('maintenance', { state: 'entered', budgetMs: prepared.budgetMs });
    journal.append('step-done', { stepId: 'enter', outputs: {}, durationMs: 1 });
    journal.close(); // the process dies here
    await new Promise((r) => setTimeout(r, deadMs));
    journal = Journal.open(dir, loaded.sha256, redactor);
    const engine = new Engine({
      prepared,
      runId: 'test-run',
      runDir: dir,
      mode: 'run',
      journal,
      redactor,
      emit() {},
      resume: reconstruct(readJournal(dir)),
    });
    const t0 = performance.now();
    const result = await engine.execute();
    const wallMs = performance.now() - t0;
    journal.close();
    return { result, wallMs, records: readJournal(dir) };
  }

  const steps: StepDef[] = [
    { id: 'enter', kind: 'test.enter' },
    { id: 'work', sleepMs: 900 },
    { id: 'exit', kind: 'test.exit' },
  ];

  it('time spent before the kill counts: over the budget during the resumed run, it aborts and rolls back', async () => {
    // 600 ms dead + 900 ms of work > 1 s; the work alone would fit.
    const { result, wallMs, records } = await killedThenResumed(600, '1s', steps);
    expect(result).toMatchObject({ status: 'rolled-back', exitCode: 1 });
    expect(result.message).toMatch(/maintenance budget of 1\.0s exceeded|maintenance budget of 1s exceeded/);
    expect(wallMs).toBeLessThan(850);
    expect(calls).toEqual(['apply:work', 'undo:work:state-of-work', 'undo:enter:state-of-enter']);
    expect(reconstruct(records).maintenance.on).toBe(false);
    expect(result.maintenanceMs).toBeGreaterThanOrEqual(1000);
  });

  it('already over the budget when resumed: stops before changing anything more, and rolls back', async () => {
    const { result, records } = await killedThenResumed(1100, '1s', steps);
    expect(result).toMatchObject({ status: 'rolled-back', exitCode: 1 });
    expect(calls).toEqual(['undo:enter:state-of-enter']);
    expect(result.message).toMatch(/^run stopped: maintenance budget/);
    expect(records.filter((r) => r.type === 'step-start').map((r) => r.stepId)).toEqual(['enter']);
  });

  it('within the budget the resumed run finishes, the window measured from the first entry', async () => {
    const { result } = await killedThenResumed(200, '5s', steps);
    expect(result.status).toBe('succeeded');
    expect(result.maintenanceMs).toBeGreaterThanOrEqual(1100);
  });
});
