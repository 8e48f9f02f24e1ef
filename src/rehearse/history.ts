// Where the prediction's figures come from: earlier rehearsals (their step times and the
// environment-set waits measured inside them), Route 53 propagation measured on the target zone by
// earlier runs (set-ttl's insyncMs, a rehearsed flip's INSYNC wait), and table sizes read by plan.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineEvent } from '../engine/events.js';
import { readJournal } from '../journal/journal.js';
import type { DatabaseConfig } from '../runbook/schema.js';
import { renderKnown } from '../runbook/template.js';
import type { PreparedRunbook } from '../runbook/validate.js';
import {
  type EnvTimes,
  type PredictInput,
  type Prediction,
  predictWindow,
  type Rehearsal,
  type StepInfo,
} from './predict.js';

export const TABLE_SIZES_FILE = 'table-sizes.json';

export function stepInfos(p: PreparedRunbook): StepInfo[] {
  const scope = { params: p.params, env: p.env, steps: {} };
  return p.runbook.steps.map((s) => ({
    id: s.id,
    kind: s.kind,
    ...(s.approval ? { approval: true } : {}),
    params: (renderKnown(s.with ?? {}, scope) ?? {}) as Record<string, unknown>,
  }));
}

const zoneKey = (z: unknown) => (typeof z === 'string' ? z.replace(/^\/?hostedzone\//, '') : '');

/** Route 53 zones the runbook changes (set-ttl and flip steps). */
export function zonesOf(steps: StepInfo[]): string[] {
  return [
    ...new Set(
      steps
        .filter((s) => s.kind === 'aws.route53.set-ttl' || s.kind === 'aws.route53.flip')
        .map((s) => zoneKey(s.params.zoneId))
        .filter((z) => z && !z.includes('${')),
    ),
  ];
}

function runDirs(runsDir: string): string[] {
  if (!existsSync(runsDir)) return [];
  return readdirSync(runsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => join(runsDir, d.name))
    .sort();
}

function safeRecords(dir: string) {
  try {
    return readJournal(dir);
  } catch {
    return []; // not a run dir, or a torn journal: it has no figure to give
  }
}

/** Succeeded rehearsals of this runbook (by name), oldest first. */
export function rehearsalsIn(runsDir: string, name: string): Rehearsal[] {
  const out: Rehearsal[] = [];
  for (const dir of runDirs(runsDir)) {
    if (!dir.includes(`-${name}-`)) continue;
    const rec = safeRecords(dir).find((r) => r.type === 'rehearsal');
    const res = rec?.result as
      | {
          status?: string;
          stepDurationsMs?: Record<string, number>;
          environmentMs?: Record<string, EnvTimes>;
        }
      | undefined;
    if (res?.status !== 'succeeded' || !res.stepDurationsMs) continue;
    out.push(
      Object.fromEntries(
        Object.entries(res.stepDurationsMs).map(([id, ms]) => [
          id,
          { totalMs: ms, env: res.environmentMs?.[id] ?? {} },
        ]),
      ),
    );
  }
  return out;
}

/** Route 53 change → INSYNC figures measured on these zones by earlier runs (ms). */
export function route53Figures(runsDir: string, zones: string[]): { figuresMs: number[]; runs: number } {
  const figures: number[] = [];
  let runs = 0;
  if (!zones.length) return { figuresMs: figures, runs };
  for (const dir of runDirs(runsDir)) {
    const records = safeRecords(dir);
    const zoneOf = new Map<string, string>();
    const before = figures.length;
    for (const r of records) {
      const id = r.stepId ?? '';
      if (r.type === 'step-start' && (r.kind === 'aws.route53.set-ttl' || r.kind === 'aws.route53.flip'))
        zoneOf.set(id, zoneKey((r.inputs as { zoneId?: unknown } | undefined)?.zoneId));
      if (r.type === 'step-done' && zones.includes(zoneOf.get(id) ?? '')) {
        const ms = (r.outputs as Record<string, unknown> | undefined)?.insyncMs;
        if (typeof ms === 'number') figures.push(ms);
      }
      if (r.type === 'rehearsal') {
        const env =
          (r.result as { environmentMs?: Record<string, EnvTimes> } | undefined)?.environmentMs ?? {};
        for (const [id, e] of Object.entries(env))
          if (zones.includes(zoneOf.get(id) ?? '') && typeof e.insync === 'number') figures.push(e.insync);
      }
    }
    if (figures.length > before) runs++;
  }
  return { figuresMs: figures, runs };
}

/** The TTL each flipped record had in the zone, as earlier flips on these zones read it (latest wins). */
export function recordTtlsIn(runsDir: string, zones: string[]): Record<string, { s: number; note: string }> {
  const out: Record<string, { s: number; note: string }> = {};
  if (!zones.length) return out;
  for (const dir of runDirs(runsDir)) {
    const names = new Map<string, string>();
    for (const r of safeRecords(dir)) {
      const id = r.stepId ?? '';
      if (r.type === 'step-start' && r.kind === 'aws.route53.flip') {
        const i = r.inputs as { zoneId?: unknown; name?: unknown } | undefined;
        if (zones.includes(zoneKey(i?.zoneId)) && typeof i?.name === 'string')
          names.set(id, i.name.replace(/\.$/, ''));
      }
      const name = r.type === 'step-done' ? names.get(id) : undefined;
      const ttl = (r.outputs as Record<string, unknown> | undefined)?.oldTtl;
      if (name && typeof ttl === 'number')
        out[name] = { s: ttl, note: `the record's TTL as a flip read it on ${r.ts.slice(0, 10)}` };
    }
  }
  return out;
}

interface SizesFile {
  source: string;
  at: string;
  bytes: Record<string, number>;
}

const hostKey = (db: Pick<DatabaseConfig, 'host' | 'port'>) => `${db.host}:${db.port}`;

/** The latest table sizes a plan read from this database. */
export function tableSizesIn(
  runsDir: string,
  db: Pick<DatabaseConfig, 'host' | 'port'> | undefined,
): SizesFile | undefined {
  if (!db) return undefined;
  let best: SizesFile | undefined;
  for (const dir of runDirs(runsDir)) {
    const f = join(dir, TABLE_SIZES_FILE);
    if (!existsSync(f)) continue;
    try {
      const s = JSON.parse(readFileSync(f, 'utf8')) as SizesFile;
      if (s.source === hostKey(db) && (!best || s.at > best.at)) best = s;
    } catch {
      // a half-written file is no figure
    }
  }
  return best;
}

/** The source database of the runbook's checksum steps (whose tables' sizes matter). */
export function checksumSource(p: PreparedRunbook, steps: StepInfo[]): DatabaseConfig | undefined {
  const s = steps.find((x) => x.kind === 'mysql.checksum');
  return typeof s?.params.source === 'string' ? p.databases[s.params.source] : undefined;
}

/** Reads data+index sizes of the checksum tables (information_schema) and keeps them in the run dir. */
export async function readTableSizes(p: PreparedRunbook, runDir: string): Promise<SizesFile | undefined> {
  const steps = stepInfos(p);
  const db = checksumSource(p, steps);
  const tables = [
    ...new Set(
      steps
        .filter((s) => s.kind === 'mysql.checksum' && Array.isArray(s.params.tables))
        .flatMap((s) => (s.params.tables as unknown[]).map(String)),
    ),
  ].filter((t) => /^[\w$]+\.[\w$]+$/.test(t));
  if (!db || !tables.length) return undefined;
  const mysql = await import('mysql2/promise');
  const { resolveHost } = await import('../adapters/resolve.js');
  const c = await mysql.createConnection({
    host: (await resolveHost(db.host, db.resolvers)).address,
    port: db.port,
    user: db.user,
    ...(db.password !== undefined ? { password: db.password } : {}),
    connectTimeout: 5000,
  });
  try {
    const [rows] = await c.query(
      `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS t, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES WHERE CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) IN (${tables.map(() => '?').join(', ')})`,
      tables,
    );
    const sizes: SizesFile = {
      source: hostKey(db),
      at: new Date().toISOString(),
      bytes: Object.fromEntries((rows as { t: string; b: number | string }[]).map((r) => [r.t, Number(r.b)])),
    };
    writeFileSync(join(runDir, TABLE_SIZES_FILE), `${JSON.stringify(sizes, null, 2)}\n`);
    return sizes;
  } finally {
    await c.end().catch(() => {});
  }
}

export interface PredictOptions {
  /** A Route 53 propagation figure given by the operator (ms): used instead of journals. */
  route53Ms?: number;
  /** A rehearsal just made (not yet in the journals read). */
  extra?: Rehearsal;
  /** The Route 53 zones that rehearsal changed: its INSYNC waits count for a target on the same zones. */
  extraZones?: string[];
  sizes?: SizesFile;
}

/** Everything the prediction needs for this runbook (as prepared for the target) from the runs dir. */
export function predictionInput(p: PreparedRunbook, runsDir: string, o: PredictOptions = {}): PredictInput {
  const steps = stepInfos(p);
  const zones = zonesOf(steps);
  const measured = route53Figures(runsDir, zones);
  if (o.extra && o.extraZones?.some((z) => zones.includes(z))) {
    const more = Object.values(o.extra)
      .map((r) => r.env.insync)
      .filter((x): x is number => typeof x === 'number');
    measured.figuresMs.push(...more);
    if (more.length) measured.runs++;
  }
  const sizes = o.sizes ?? tableSizesIn(runsDir, checksumSource(p, steps));
  const rehearsals = rehearsalsIn(runsDir, p.runbook.name);
  const ttls = recordTtlsIn(runsDir, zones);
  if (o.extra) rehearsals.push(o.extra);
  return {
    steps,
    budgetMs: p.budgetMs,
    rehearsals,
    ...(o.route53Ms !== undefined
      ? {
          route53: {
            figuresMs: [o.route53Ms],
            source: 'given' as const,
            note: 'given (--route53-propagation)',
          },
        }
      : measured.figuresMs.length
        ? {
            route53: {
              figuresMs: measured.figuresMs,
              source: 'measured' as const,
              note: `measured on zone ${zones.join(', ')}: ${measured.figuresMs.length} change(s) in ${measured.runs} run(s)`,
            },
          }
        : {}),
    ...(Object.keys(ttls).length ? { recordTtls: ttls } : {}),
    ...(sizes
      ? { tableSizes: { bytes: sizes.bytes, source: 'plan' as const, note: `read by plan at ${sizes.at}` } }
      : {}),
  };
}

export function predictFor(p: PreparedRunbook, runsDir: string, o: PredictOptions = {}): Prediction {
  return predictWindow(predictionInput(p, runsDir, o));
}

/**
 * Times the environment-set waits inside each step of a live run, from its progress events:
 * INSYNC polling, DNS answers, the old TTL, fixed waits, approval gates.
 */
export class EnvTimer {
  private readonly times: Record<string, EnvTimes> = {};
  private open: { stepId: string; phase: keyof EnvTimes; since: number } | undefined;

  private close(now: number) {
    if (!this.open) return;
    const t = this.times[this.open.stepId] ?? {};
    this.times[this.open.stepId] = t;
    t[this.open.phase] = (t[this.open.phase] ?? 0) + (now - this.open.since);
    this.open = undefined;
  }

  private phaseOf(
    e: EngineEvent & { type: 'progress' },
    kind: string | undefined,
  ): keyof EnvTimes | undefined {
    if (/INSYNC/.test(e.label)) return 'insync';
    if (/waiting out the old TTL/.test(e.label)) return 'ttl';
    if (kind === 'aws.route53.flip' && / to answer /.test(e.label)) return 'dns';
    if (kind === 'wait') return 'wait';
    return undefined;
  }

  constructor(private readonly kinds: Record<string, string>) {}

  on = (e: EngineEvent, now = performance.now()): void => {
    if (e.type === 'progress') {
      const phase = this.phaseOf(e, this.kinds[e.stepId]);
      if (this.open && (this.open.stepId !== e.stepId || this.open.phase !== phase)) this.close(now);
      if (phase && !this.open) this.open = { stepId: e.stepId, phase, since: now };
    } else if (e.type === 'step') {
      this.close(now);
      if (e.state === 'awaiting-approval') this.open = { stepId: e.stepId, phase: 'gate', since: now };
    }
  };

  result(): Record<string, EnvTimes> {
    this.close(performance.now());
    return Object.fromEntries(
      Object.entries(this.times).map(([id, t]) => [
        id,
        Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v)])) as EnvTimes,
      ]),
    );
  }
}
