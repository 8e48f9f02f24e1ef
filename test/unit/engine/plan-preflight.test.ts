// Plan tells the truth (review M7 "plan", C2): kinds' preflight runs for every step before the first
// one, in plan and in run; a plan defers only failures an earlier recorded write could cure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { EngineEvent } from '../../../src/engine/events.js';
import { Engine } from '../../../src/engine/executor.js';
import { defineKind, type StepKind } from '../../../src/engine/types.js';
import { StepError } from '../../../src/errors.js';
import { Journal, readJournal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { kinds } from '../../../src/steps/registry.js';

let calls: string[] = [];

const Params = z
  .object({
    name: z.string(),
    /** preflight throws this code */
    refuse: z.string().optional(),
    /** apply throws this code */
    fail: z.string().optional(),
    from: z.string().optional(),
    /** preflight waits this long (abortable) */
    hangMs: z.number().optional(),
  })
  .strict();
type P = z.infer<typeof Params>;

const kind = defineKind<P>({
  kind: 'test.pre',
  summary: 'test kind with a preflight',
  params: Params,
  outputs: ['v'],
  describe: (p) => [`would change ${p.name}`],
  async preflight(ctx, p) {
    calls.push(`preflight:${p.name}`);
    if (p.hangMs) await ctx.sleep(p.hangMs);
    if (p.refuse) throw new StepError(p.refuse, `${p.name} cannot run here`);
  },
  async apply(ctx, p) {
    calls.push(`apply:${p.name}`);
    // A recorded write in plan mode, as adapters do.
    if (ctx.dryRun) ctx.adapters.env.record({ action: 'change', target: p.name });
    if (p.fail) throw new StepError(p.fail, `${p.name} failed today`);
    return { v: p.name };
  },
  async undo(_ctx, p) {
    calls.push(`undo:${p.name}`);
  },
});

const registry = kinds as Map<string, StepKind>;
beforeAll(() => {
  registry.set(kind.kind, kind);
});
afterAll(() => {
  registry.delete(kind.kind);
});

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
  calls = [];
});

async function go(mode: 'plan' | 'run', steps: (Partial<P> & { id: string; timeout?: string })[]) {
  dir = mkdtempSync(join(tmpdir(), 'cutover-preflight-'));
  const lines = ['version: 1', 'name: preflight-test', 'steps:'];
  for (const { id, timeout, ...w } of steps)
    lines.push(
      `  - ${JSON.stringify({ id, kind: 'test.pre', ...(timeout ? { timeout } : {}), with: { name: id, ...w } })}`,
    );
  const loaded = loadRunbookText(join(dir, 'runbook.yaml'), lines.join('\n'));
  const prepared = prepareRunbook(loaded, { envStrict: true });
  const redactor = new Redactor(prepared.secrets);
  const journal = Journal.open(dir, loaded.sha256, redactor);
  // The session writes run-start; the engine reads its state from the journal.
  journal.append('run-start', {
    runId: 'test-run',
    mode,
    runbook: { file: loaded.file, name: prepared.runbook.name, sha256: loaded.sha256 },
    vars: {},
    steps: prepared.runbook.steps.map((s) => ({ id: s.id, kind: s.kind })),
  });
  const events: EngineEvent[] = [];
  const engine = new Engine({
    prepared,
    runId: 'test-run',
    runDir: dir,
    mode,
    journal,
    redactor,
    emit: (e) => events.push(e),
  });
  const result = await engine.execute();
  journal.close();
  const errors = events.flatMap((e) => (e.type === 'log' && e.level === 'error' ? [e] : []));
  const warnings = events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e] : []));
  return { result, events, errors, warnings, records: readJournal(dir) };
}

describe('plan tells the truth', () => {
  it('M7 plan: a preflight failure after steps that record writes fails the plan (exit 1), one line naming the step', async () => {
    const { result, errors } = await go('plan', [
      { id: 'fence' },
      { id: 'drain' },
      { id: 'freeze', refuse: 'READ_ONLY_UNSUPPORTED' },
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.status).toBe('plan-failed');
    expect(result.planFailures).toBe(1);
    expect(errors).toEqual([
      expect.objectContaining({ stepId: 'freeze', message: 'preflight: freeze cannot run here' }),
    ]);
    // Preflight runs for every step before the first one is planned.
    expect(calls.slice(0, 3)).toEqual(['preflight:fence', 'preflight:drain', 'preflight:freeze']);
  });

  it('M7 plan: run refuses before any step when a preflight fails (exit 1, nothing applied)', async () => {
    const { result, errors } = await go('run', [
      { id: 'fence' },
      { id: 'freeze', refuse: 'PREFLIGHT_FAILED' },
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.message).toBe('preflight refused 1 step(s) (listed above); nothing was changed');
    expect(calls.filter((c) => c.startsWith('apply') || c.startsWith('undo'))).toEqual([]);
    expect(errors.map((e) => e.stepId)).toEqual(['freeze']);
  });

  it('C2: a flavor refusal or privilege gap in apply is never deferred, even after recorded writes', async () => {
    for (const code of ['READ_ONLY_UNSUPPORTED', 'DB_PRIVILEGE_MISSING']) {
      const { result } = await go('plan', [{ id: 'fence' }, { id: 'freeze', fail: code }]);
      expect(result.exitCode).toBe(1);
      expect(result.planFailures).toBe(1);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('M7 plan: a check an earlier recorded write can cure is deferred and listed apart; exit 0', async () => {
    const { result, warnings } = await go('plan', [{ id: 'flip' }, { id: 'smoke', fail: 'HTTP_FAILED' }]);
    expect(result.exitCode).toBe(0);
    expect(result.message).toBe(
      'plan complete; nothing was changed; 1 check(s) deferred to the real run: smoke',
    );
    expect(warnings).toEqual([
      expect.objectContaining({
        stepId: 'smoke',
        message: 'deferred to the real run (depends on earlier changes); today it says: smoke failed today',
      }),
    ]);
  });

  it('M7 plan: the same failure with no earlier write is a plan failure, not deferred', async () => {
    const { result } = await go('plan', [{ id: 'smoke', fail: 'HTTP_FAILED' }]);
    expect(result.exitCode).toBe(1);
  });

  it('M7 plan: a preflight that hangs is cut at the step timeout and named; the run changes nothing', async () => {
    const t0 = performance.now();
    const { result, errors } = await go('run', [{ id: 'slow', hangMs: 60_000, timeout: '200ms' }]);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(result.exitCode).toBe(1);
    expect(errors[0]).toMatchObject({ stepId: 'slow' });
    expect(errors[0]!.message).toMatch(/^preflight: step "slow" preflight did not finish within 200ms/);
    expect(calls.filter((c) => c.startsWith('apply'))).toEqual([]);
  });

  it('M7 plan: a step whose params need an earlier step’s outputs is not preflighted', async () => {
    const { result } = await go('run', [
      { id: 'a' },
      { id: 'b', from: '${steps.a.outputs.v}', refuse: 'PREFLIGHT_FAILED' },
    ]);
    expect(calls).toContain('preflight:a');
    expect(calls).not.toContain('preflight:b');
    expect(result.exitCode).toBe(0);
  });

  it('C3: a step whose preflight reads only known keys is preflighted while another key waits on an output', async () => {
    const k = kind as { preflightReads?: readonly string[] };
    k.preflightReads = ['name', 'refuse'];
    try {
      const { result, errors } = await go('plan', [
        { id: 'a' },
        { id: 'flip', from: '${steps.a.outputs.v}', refuse: 'PRIVATE_ZONE_NEEDS_RESOLVERS' },
      ]);
      expect(calls.slice(0, 2)).toEqual(['preflight:a', 'preflight:flip']);
      expect(result.exitCode).toBe(1);
      expect(errors).toEqual([expect.objectContaining({ stepId: 'flip' })]);
    } finally {
      delete k.preflightReads;
    }
  });
});
