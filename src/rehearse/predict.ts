// The production window, predicted from what transfers and what does not. A rehearsal's step
// durations hold two kinds of time: the tool's own work and the database's catch-up (these carry
// over to production), and waits set by the environment (Route 53 propagation, TTLs, quiet and
// grace periods, data size, people at approval gates), which in the sandbox are a second or none.
// The first comes from rehearsals; the second from production's own figures: the runbook's values,
// Route 53 propagation measured on the target zone, table sizes read by `cutover plan`, and stated
// assumptions where nothing better is known.
import { formatMs } from '../errors.js';
import { parseDuration } from '../duration.js';

/** Where a figure comes from: only `assumed` is a guess. */
export type Source = 'rehearsed' | 'measured' | 'given' | 'runbook' | 'plan' | 'assumed';

export interface Part {
  stepId: string;
  what: string;
  lowMs: number;
  highMs: number;
  source: Source;
  /** True: the tool's work / catch-up (from rehearsals); false: set by the environment. */
  transfers: boolean;
  /** Inside the maintenance window (what customers see), or before it. */
  inWindow: boolean;
  note?: string;
}

/** Environment-set time inside one rehearsed step (ms): subtracted to leave the tool's own work. */
export interface EnvTimes {
  insync?: number;
  dns?: number;
  ttl?: number;
  gate?: number;
  wait?: number;
}

export interface RehearsedStep {
  totalMs: number;
  env: EnvTimes;
}

/** One rehearsal: per step id. */
export type Rehearsal = Record<string, RehearsedStep>;

export interface StepInfo {
  id: string;
  kind: string;
  approval?: boolean;
  /** The step's `with:`, rendered as far as parameters allow (run-time outputs stay templates). */
  params: Record<string, unknown>;
}

export interface PredictInput {
  steps: StepInfo[];
  budgetMs?: number | undefined;
  rehearsals: Rehearsal[];
  /** Route 53 change → INSYNC on the target zone, each figure in ms. */
  route53?: { figuresMs: number[]; source: 'measured' | 'given'; note: string } | undefined;
  /** schema.table → bytes (data + indexes), e.g. read by `cutover plan`. */
  tableSizes?: { bytes: Record<string, number>; source: 'plan' | 'given'; note: string } | undefined;
  /** record name → the TTL earlier flips of it read from the zone (s), when the runbook does not set it. */
  recordTtls?: Record<string, { s: number; note: string }> | undefined;
}

export interface Prediction {
  /** Time in maintenance: what customers see. */
  lowMs: number;
  highMs: number;
  /** The whole run, including the steps before maintenance. */
  totalLowMs: number;
  totalHighMs: number;
  budgetMs?: number;
  parts: Part[];
  warnings: string[];
  rehearsals: number;
}

// Stated assumptions (printed with the prediction, never silently).
export const ASSUMED = {
  /** Route 53 aims at propagating a change within 60 s (AWS). */
  route53LowMs: 5_000,
  route53HighMs: 60_000,
  /** A measured propagation varies: the high end allows half as much again as the slowest seen. */
  measuredHighFactor: 1.5,
  /** CHECKSUM TABLE / CRC32 read rate: fast storage vs. a busy or cold buffer pool. */
  checksumFastBytesPerS: 200e6,
  checksumSlowBytesPerS: 50e6,
  /** Someone reading the prompt and answering it, per gate inside the window. */
  gateLowMs: 10_000,
  gateHighMs: 120_000,
  /** Rehearsed work varies run to run: the range is the fastest −25% to the slowest +25%. */
  rehearsedSpread: 0.25,
  /** A step never rehearsed: the tool's own work is not known. */
  unrehearsedLowMs: 1_000,
  unrehearsedHighMs: 10_000,
} as const;

const dur = (v: unknown, dflt: number): number => {
  if (typeof v === 'number' || typeof v === 'string') return parseDuration(v) ?? dflt;
  return dflt;
};
const num = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
const sameName = (a: unknown, b: unknown) =>
  typeof a === 'string' && typeof b === 'string' && a.replace(/\.$/, '') === b.replace(/\.$/, '');

/** Index of the maintenance window's first and last steps (enter and exit), if any. */
function windowOf(steps: StepInfo[]): { from: number; to: number } | undefined {
  const from = steps.findIndex((s) => s.kind === 'maintenance.enter');
  if (from < 0) return undefined;
  const exit = steps.findIndex((s, i) => i > from && s.kind === 'maintenance.exit');
  return { from, to: exit < 0 ? steps.length - 1 : exit };
}

/** The TTL resolvers hold the old answer for at the flip: the set-ttl of the same record, or the flip's cap. */
function oldTtlAt(
  steps: StepInfo[],
  flip: StepInfo,
  seen: PredictInput['recordTtls'],
): { s: number; source: Source; note: string } {
  const i = steps.indexOf(flip);
  const lowered = steps
    .slice(0, i)
    .findLast((s) => s.kind === 'aws.route53.set-ttl' && sameName(s.params.name, flip.params.name));
  const t = lowered ? num(lowered.params.ttl) : undefined;
  if (t !== undefined) return { s: t, source: 'runbook', note: `TTL ${t}s set by "${lowered!.id}"` };
  const read = typeof flip.params.name === 'string' ? seen?.[flip.params.name.replace(/\.$/, '')] : undefined;
  if (read) return { s: read.s, source: 'measured', note: read.note };
  const cap = num(flip.params.maxOldTtl);
  if (cap !== undefined) return { s: cap, source: 'runbook', note: `at most maxOldTtl ${cap}s` };
  return { s: 60, source: 'assumed', note: 'the record’s TTL is not in the runbook: 60s assumed' };
}

function route53Range(r: PredictInput['route53']): {
  low: number;
  high: number;
  source: Source;
  note: string;
} {
  if (r?.figuresMs.length) {
    const low = Math.min(...r.figuresMs);
    const high = Math.max(...r.figuresMs) * ASSUMED.measuredHighFactor;
    return { low, high, source: r.source, note: `${r.note}; high end ×${ASSUMED.measuredHighFactor}` };
  }
  return {
    low: ASSUMED.route53LowMs,
    high: ASSUMED.route53HighMs,
    source: 'assumed',
    note: 'not measured on this zone: Route 53 aims at 60s (run the set-ttl step days before to measure it)',
  };
}

/** Environment parts of one step, in production. */
function environment(
  s: StepInfo,
  all: StepInfo[],
  input: PredictInput,
  warnings: string[],
): Omit<Part, 'inWindow'>[] {
  const out: Omit<Part, 'inWindow'>[] = [];
  const add = (what: string, lowMs: number, highMs: number, source: Source, note?: string) =>
    out.push({ stepId: s.id, what, lowMs, highMs, source, transfers: false, ...(note ? { note } : {}) });
  const p = s.params;
  switch (s.kind) {
    case 'aws.route53.flip': {
      const r = route53Range(input.route53);
      add('Route 53 propagation (INSYNC)', r.low, r.high, r.source, r.note);
      const every = dur(p.resolveInterval, 1000);
      add('resolvers answer the new value', 0, 2 * every, 'runbook', `polled every ${formatMs(every)}`);
      if (p.waitForCaches !== false) {
        const ttl = oldTtlAt(all, s, input.recordTtls);
        add('old TTL waited out', ttl.s * 1000, ttl.s * 1000 + 1000, ttl.source, ttl.note);
      }
      break;
    }
    case 'aws.route53.set-ttl': {
      const r = route53Range(input.route53);
      add('Route 53 propagation, if the TTL still needs lowering', 0, r.high, r.source, r.note);
      break;
    }
    case 'mysql.checksum': {
      const tables = Array.isArray(p.tables) ? p.tables.map(String) : [];
      const sizes = input.tableSizes?.bytes ?? {};
      const known = tables.filter((t) => sizes[t] !== undefined);
      const unknown = tables.filter((t) => sizes[t] === undefined);
      const bytes = known.reduce((a, t) => a + sizes[t]!, 0);
      if (known.length)
        add(
          `data read (${known.length} table(s), ${formatBytes(bytes)})`,
          (bytes / ASSUMED.checksumFastBytesPerS) * 1000,
          (bytes / ASSUMED.checksumSlowBytesPerS) * 1000,
          input.tableSizes!.source,
          `${input.tableSizes!.note}; read rate assumed ${formatBytes(ASSUMED.checksumSlowBytesPerS)}/s–${formatBytes(ASSUMED.checksumFastBytesPerS)}/s`,
        );
      if (unknown.length || p.schemas)
        warnings.push(
          `${s.id}: the size of ${unknown.length ? unknown.join(', ') : `the tables of ${String(p.schemas)}`} is not known: its checksum time is not in the prediction; run \`cutover plan\` against production to read table sizes`,
        );
      break;
    }
    case 'mysql.connections.drain': {
      const quiet = dur(p.quiet, 2000);
      add('binlog quiet interval', quiet, quiet, 'runbook', `quiet ${formatMs(quiet)}`);
      if (p.kill === true) {
        const grace = dur(p.grace, 10_000);
        add('sessions given time to end', 0, grace, 'runbook', `grace ${formatMs(grace)}`);
      }
      break;
    }
    case 'wait': {
      const d = dur(p.duration, 0);
      add(`fixed wait${p.reason ? ` (${String(p.reason)})` : ''}`, d, d, 'runbook');
      break;
    }
  }
  return out;
}

/** The rehearsed environment time of a step, to take out of its duration (what is left transfers). */
function rehearsedEnv(r: RehearsedStep): number {
  const e = r.env;
  return (e.insync ?? 0) + (e.dns ?? 0) + (e.ttl ?? 0) + (e.gate ?? 0) + (e.wait ?? 0);
}

export function predictWindow(input: PredictInput): Prediction {
  const warnings: string[] = [];
  const parts: Part[] = [];
  const w = windowOf(input.steps);
  if (!w)
    warnings.push('the runbook has no maintenance.enter step: there is no maintenance window to predict');
  input.steps.forEach((s, i) => {
    const inWindow = !!w && i >= w.from && i <= w.to;
    // The work that carries over: each rehearsal's time minus its environment-set waits.
    const seen = input.rehearsals.map((r) => r[s.id]).filter((x): x is RehearsedStep => !!x);
    if (seen.length) {
      const own = seen.map((r) => Math.max(0, r.totalMs - rehearsedEnv(r)));
      parts.push({
        stepId: s.id,
        what: 'tool work and catch-up',
        lowMs: Math.min(...own) * (1 - ASSUMED.rehearsedSpread),
        highMs: Math.max(...own) * (1 + ASSUMED.rehearsedSpread),
        source: 'rehearsed',
        transfers: true,
        inWindow,
      });
    } else
      parts.push({
        stepId: s.id,
        what: 'tool work (never rehearsed)',
        lowMs: ASSUMED.unrehearsedLowMs,
        highMs: ASSUMED.unrehearsedHighMs,
        source: 'assumed',
        transfers: true,
        inWindow,
      });
    for (const e of environment(s, input.steps, input, warnings)) parts.push({ ...e, inWindow });
    // A gate on the entering step is answered before maintenance begins; later ones inside it.
    if (s.approval && inWindow && i > w!.from)
      parts.push({
        stepId: s.id,
        what: 'operator at the approval gate',
        lowMs: ASSUMED.gateLowMs,
        highMs: ASSUMED.gateHighMs,
        source: 'assumed',
        transfers: false,
        inWindow,
      });
  });
  if (!input.rehearsals.length)
    warnings.push('no rehearsal of this runbook yet: the tool’s own work is assumed; run `cutover rehearse`');
  const sum = (xs: Part[], k: 'lowMs' | 'highMs') => Math.round(xs.reduce((a, x) => a + x[k], 0));
  const inside = parts.filter((x) => x.inWindow);
  const pred: Prediction = {
    lowMs: sum(inside, 'lowMs'),
    highMs: sum(inside, 'highMs'),
    totalLowMs: sum(parts, 'lowMs'),
    totalHighMs: sum(parts, 'highMs'),
    ...(input.budgetMs !== undefined ? { budgetMs: input.budgetMs } : {}),
    parts: parts.map((x) => ({ ...x, lowMs: Math.round(x.lowMs), highMs: Math.round(x.highMs) })),
    warnings,
    rehearsals: input.rehearsals.length,
  };
  if (input.budgetMs !== undefined && input.budgetMs < pred.highMs)
    warnings.unshift(
      `the maintenance budget (${formatMs(input.budgetMs)}) is shorter than the predicted high end (${formatMs(pred.highMs)}): the run may roll back on budget; raise maintenance.budget or shorten the waits listed`,
    );
  return pred;
}

export function formatBytes(b: number): string {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) {
    b /= 1000;
    i++;
  }
  return `${b >= 100 || i === 0 ? Math.round(b) : b.toFixed(1)} ${u[i]}`;
}

const range = (lo: number, hi: number) => (lo === hi ? formatMs(lo) : `${formatMs(lo)}–${formatMs(hi)}`);

export function renderPrediction(p: Prediction, title = 'Predicted production window'): string {
  const lines = [
    '',
    `${title} (time in maintenance): ${range(p.lowMs, p.highMs)}${p.budgetMs !== undefined ? `  (budget ${formatMs(p.budgetMs)}${p.budgetMs < p.highMs ? ': TOO SHORT' : ': fits'})` : ''}`,
    `  whole run, steps before maintenance included: ${range(p.totalLowMs, p.totalHighMs)}`,
    `  made of (${p.rehearsals} rehearsal(s); measured/given/runbook/plan figures are production's, assumed ones are stated):`,
  ];
  // Without a maintenance window, what makes up the whole run.
  const windowed = p.parts.some((x) => x.inWindow);
  const inside = p.parts.filter((x) => (x.inWindow || !windowed) && x.highMs > 0);
  const own = inside.filter((x) => x.transfers);
  const ownSrc = own.some((x) => x.source === 'assumed') ? 'rehearsed+assumed' : 'rehearsed';
  lines.push(
    `    ${'tool work and catch-up'.padEnd(44)} ${range(
      own.reduce((a, x) => a + x.lowMs, 0),
      own.reduce((a, x) => a + x.highMs, 0),
    ).padEnd(14)} ${ownSrc} (${own.length} steps)`,
  );
  for (const x of inside.filter((y) => !y.transfers))
    lines.push(
      `    ${`${x.stepId}: ${x.what}`.padEnd(44)} ${range(x.lowMs, x.highMs).padEnd(14)} ${x.source}${x.note ? ` — ${x.note}` : ''}`,
    );
  for (const w of p.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}
