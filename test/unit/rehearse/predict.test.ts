// The production prediction with known inputs: runbooks/rds-to-aurora.yaml's own steps and
// parameters, a given Route 53 propagation figure, table sizes, and one synthetic rehearsal whose
// environment-set waits (sandbox INSYNC, sandbox TTL, quiet interval) are known.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import {
  EnvTimer,
  recordTtlsIn,
  rehearsalsIn,
  route53Figures,
  TABLE_SIZES_FILE,
  tableSizesIn,
} from '../../../src/rehearse/history.js';
import {
  ASSUMED,
  type Part,
  type PredictInput,
  predictWindow,
  type Rehearsal,
  renderPrediction,
  type StepInfo,
} from '../../../src/rehearse/predict.js';
import { loadRunbookFile } from '../../../src/runbook/load.js';
import { renderKnown } from '../../../src/runbook/template.js';

/** The template's steps with its own (production) parameters, as the prediction sees them. */
function templateSteps(): StepInfo[] {
  const d = loadRunbookFile('runbooks/rds-to-aurora.yaml').data as {
    params: Record<string, unknown>;
    steps: { id: string; kind: string; approval?: boolean; with?: Record<string, unknown> }[];
  };
  const scope = { params: d.params, env: {}, steps: {} };
  return d.steps.map((s) => ({
    id: s.id,
    kind: s.kind,
    ...(s.approval ? { approval: true } : {}),
    params: renderKnown(s.with ?? {}, scope) as Record<string, unknown>,
  }));
}

const GB = 1e9;
const SIZES = { 'shop.orders': 20 * GB, 'shop.products': 2 * GB, 'shop.shops': 0.1 * GB };

/** A sandbox rehearsal: every step 400 ms of own work, plus the sandbox's environment waits. */
function rehearsal(steps: StepInfo[]): Rehearsal {
  const r: Rehearsal = {};
  for (const s of steps) r[s.id] = { totalMs: 400, env: {} };
  r['flip-dns'] = { totalMs: 400 + 1000 + 1000, env: { insync: 1000, ttl: 1000 } };
  r.drain = { totalMs: 400 + 1500, env: { wait: 1500 } };
  return r;
}

function input(over: Partial<PredictInput> = {}): PredictInput {
  const steps = templateSteps();
  return {
    steps,
    budgetMs: 10 * 60_000,
    rehearsals: [rehearsal(steps)],
    route53: { figuresMs: [40_000], source: 'given', note: 'given' },
    tableSizes: { bytes: SIZES, source: 'plan', note: 'plan' },
    ...over,
  };
}

const part = (parts: Part[], stepId: string, what: RegExp) => {
  const p = parts.find((x) => x.stepId === stepId && what.test(x.what));
  if (!p) throw new Error(`no part ${stepId} ${what}`);
  return p;
};

describe('predictWindow on runbooks/rds-to-aurora.yaml', () => {
  it('puts production figures, not the sandbox’s, into the flip, the drain and the checksum', () => {
    const p = predictWindow(input());
    // Route 53: the given 40 s, the high end half as much again; never the sandbox's 1 s.
    expect(part(p.parts, 'flip-dns', /INSYNC/)).toMatchObject({
      lowMs: 40_000,
      highMs: 60_000,
      source: 'given',
    });
    // The old TTL is the one lower-ttl sets (recordTtl 5), from the runbook.
    expect(part(p.parts, 'flip-dns', /old TTL/)).toMatchObject({
      lowMs: 5000,
      highMs: 6000,
      source: 'runbook',
    });
    // The flip's own work: 2.4 s rehearsed minus the 2 s of sandbox waits, ±25%.
    expect(part(p.parts, 'flip-dns', /tool work/)).toMatchObject({
      lowMs: 300,
      highMs: 500,
      transfers: true,
    });
    // The drain: production's quiet (5 s) and grace (30 s), the rehearsal's 1.5 s quiet taken out.
    expect(part(p.parts, 'drain', /quiet/)).toMatchObject({ lowMs: 5000, highMs: 5000, source: 'runbook' });
    expect(part(p.parts, 'drain', /time to end/)).toMatchObject({ lowMs: 0, highMs: 30_000 });
    expect(part(p.parts, 'drain', /tool work/)).toMatchObject({ lowMs: 300, highMs: 500 });
    // 22.1 GB read at 200 MB/s (fast) to 50 MB/s (slow).
    const bytes = 22.1 * GB;
    expect(part(p.parts, 'checksum', /data read/)).toMatchObject({
      lowMs: Math.round((bytes / ASSUMED.checksumFastBytesPerS) * 1000),
      highMs: Math.round((bytes / ASSUMED.checksumSlowBytesPerS) * 1000),
      source: 'plan',
    });
  });

  it('counts only the maintenance window: enter-maintenance through exit-maintenance, the go/no-go gate before it', () => {
    const p = predictWindow(input());
    const inside = [...new Set(p.parts.filter((x) => x.inWindow).map((x) => x.stepId))];
    expect(inside).toEqual([
      'enter-maintenance',
      'fence-old',
      'drain',
      'stop-replication',
      'checksum',
      'flip-dns',
      'reverse-replication',
      'smoke',
      'exit-maintenance',
    ]);
    expect(p.parts.some((x) => /approval gate/.test(x.what))).toBe(false);
    // Known sum: 9 steps × 300–500 ms own work, quiet 5 s, grace 0–30 s, checksum 110.5–442 s,
    // INSYNC 40–60 s, resolvers 0–2 s, TTL 5–6 s.
    expect(p.lowMs).toBe(9 * 300 + 5000 + 0 + 110_500 + 40_000 + 0 + 5000);
    expect(p.highMs).toBe(9 * 500 + 5000 + 30_000 + 442_000 + 60_000 + 2000 + 6000);
    expect(p.totalHighMs).toBeGreaterThan(p.highMs);
  });

  it('warns when the maintenance budget is shorter than the predicted high end, and only then', () => {
    const tight = predictWindow(input({ budgetMs: 5 * 60_000 }));
    expect(tight.warnings[0]).toMatch(/budget \(5m\) is shorter than the predicted high end \(9m10s\)/);
    expect(renderPrediction(tight)).toMatch(/budget 5m: TOO SHORT/);
    const roomy = predictWindow(input({ budgetMs: 15 * 60_000 }));
    expect(roomy.warnings.join('\n')).not.toMatch(/budget/);
    expect(renderPrediction(roomy)).toMatch(/budget 15m: fits/);
  });

  it('says which figures are assumed when nothing was measured', () => {
    const p = predictWindow(input({ route53: undefined, tableSizes: undefined, rehearsals: [] }));
    expect(part(p.parts, 'flip-dns', /INSYNC/)).toMatchObject({
      lowMs: ASSUMED.route53LowMs,
      highMs: ASSUMED.route53HighMs,
      source: 'assumed',
    });
    expect(part(p.parts, 'fence-old', /never rehearsed/).source).toBe('assumed');
    expect(p.warnings.join('\n')).toMatch(/size of shop\.orders, shop\.products, shop\.shops is not known/);
    expect(p.warnings.join('\n')).toMatch(/no rehearsal of this runbook yet/);
    const text = renderPrediction(p);
    expect(text).toMatch(/flip-dns: Route 53 propagation \(INSYNC\)\s+5\.0s–1m\s+assumed/);
    expect(text).toMatch(/flip-dns: old TTL waited out\s+5\.0s–6\.0s\s+runbook/);
  });

  it('counts an approval gate inside the window as operator time', () => {
    const steps = templateSteps().map((s) => (s.id === 'checksum' ? { ...s, approval: true } : s));
    const p = predictWindow(input({ steps }));
    expect(part(p.parts, 'checksum', /approval gate/)).toMatchObject({
      lowMs: ASSUMED.gateLowMs,
      highMs: ASSUMED.gateHighMs,
      source: 'assumed',
    });
  });
});

describe('figures from earlier runs (journals under --runs-dir)', () => {
  let runs: string;
  beforeEach(() => {
    runs = mkdtempSync(join(tmpdir(), 'cutover-predict-'));
  });
  afterEach(() => rmSync(runs, { recursive: true, force: true }));

  function run(name: string, write: (j: Journal) => void): string {
    const dir = join(runs, name);
    mkdirSync(dir);
    const j = Journal.open(dir, 'a'.repeat(64), new Redactor([]));
    j.append('run-start', {
      runId: name,
      mode: 'run',
      runbook: { file: '/rb.yaml', name: 'shop', sha256: 'a'.repeat(64) },
      vars: {},
      steps: [],
    });
    write(j);
    j.close();
    return dir;
  }

  it('finds set-ttl INSYNC figures and flipped TTLs measured on the target zone only', () => {
    run('20261101T000000Z-shop-1', (j) => {
      j.append('step-start', {
        stepId: 'lower-ttl',
        kind: 'aws.route53.set-ttl',
        inputs: { zoneId: '/hostedzone/ZPROD', name: 'db.shop.internal', type: 'CNAME', ttl: 5 },
      });
      j.append('step-done', {
        stepId: 'lower-ttl',
        outputs: { previousTtl: 300, ttl: 5, insyncMs: 34_000, safeAfter: '' },
        durationMs: 35_000,
      });
    });
    run('20261102T000000Z-shop-2', (j) => {
      j.append('step-start', {
        stepId: 'flip-dns',
        kind: 'aws.route53.flip',
        inputs: { zoneId: 'ZSANDBOX', name: 'db.shop.internal', type: 'CNAME' },
      });
      j.append('step-done', { stepId: 'flip-dns', outputs: { oldTtl: 1 }, durationMs: 2000 });
      j.append('rehearsal', {
        result: {
          status: 'succeeded',
          stepDurationsMs: { 'flip-dns': 2000 },
          environmentMs: { 'flip-dns': { insync: 900, ttl: 1000 } },
        },
      });
    });
    expect(route53Figures(runs, ['ZPROD'])).toEqual({ figuresMs: [34_000], runs: 1 });
    expect(route53Figures(runs, ['ZSANDBOX'])).toEqual({ figuresMs: [900], runs: 1 });
    expect(recordTtlsIn(runs, ['ZSANDBOX'])['db.shop.internal']?.s).toBe(1);
    expect(recordTtlsIn(runs, ['ZPROD'])).toEqual({});
    expect(rehearsalsIn(runs, 'shop')).toEqual([
      { 'flip-dns': { totalMs: 2000, env: { insync: 900, ttl: 1000 } } },
    ]);
  });

  it('takes the latest table sizes a plan read from the same source database', () => {
    const a = run('20261101T000000Z-shop-a', () => {});
    const b = run('20261102T000000Z-shop-b', () => {});
    writeFileSync(
      join(a, TABLE_SIZES_FILE),
      JSON.stringify({ source: 'rds:3306', at: '2026-11-01T00:00:00Z', bytes: { 'shop.orders': 1 } }),
    );
    writeFileSync(
      join(b, TABLE_SIZES_FILE),
      JSON.stringify({ source: 'rds:3306', at: '2026-11-02T00:00:00Z', bytes: { 'shop.orders': 2 } }),
    );
    const db = { host: 'rds', port: 3306, user: 'u' };
    expect(tableSizesIn(runs, db)?.bytes['shop.orders']).toBe(2);
    expect(tableSizesIn(runs, { ...db, host: 'sandbox' })).toBeUndefined();
  });
});

describe('EnvTimer', () => {
  it('times INSYNC, resolver answers, the old TTL and approval gates from progress events', () => {
    const t = new EnvTimer({ flip: 'aws.route53.flip', gate: 'maintenance.enter' });
    const progress = (stepId: string, label: string) => ({ type: 'progress' as const, stepId, label });
    const step = (stepId: string, state: 'awaiting-approval' | 'checking' | 'done') => ({
      type: 'step' as const,
      stepId,
      state,
    });
    t.on(step('gate', 'awaiting-approval'), 0);
    t.on(step('gate', 'checking'), 5000);
    t.on(step('gate', 'done'), 5100);
    t.on(progress('flip', 'Route 53 change C1 (flip of db) INSYNC — PENDING'), 6000);
    t.on(progress('flip', 'Route 53 change C1 (flip of db) INSYNC — PENDING'), 6500);
    t.on(progress('flip', '127.0.0.1 to answer db CNAME → new — old'), 7000);
    t.on(progress('flip', 'db: waiting out the old TTL (1s) so cached answers expire — 1s left'), 7200);
    t.on(step('flip', 'done'), 8200);
    expect(t.result()).toEqual({ gate: { gate: 5000 }, flip: { insync: 1000, dns: 200, ttl: 1000 } });
  });
});
