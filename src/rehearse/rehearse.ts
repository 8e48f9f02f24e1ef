// `cutover rehearse`: the runbook for real (sandbox or staging) under a canary write load, then the
// figures a team announces from: write-unavailability, time in maintenance, lost writes (must be 0),
// and a predicted window from this and earlier rehearsals.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ExitCode, formatMs, InputError } from '../errors.js';
import { Journal, readJournal } from '../journal/journal.js';
import { Redactor } from '../journal/redact.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { runSession, type SessionOptions } from '../session.js';
import { resolveHost } from '../adapters/resolve.js';
import { parseDuration } from '../duration.js';
import type { PreparedRunbook } from '../runbook/validate.js';
import { EnvTimer, predictFor, stepInfos, zonesOf } from './history.js';
import { CanaryLoad, countLostWrites, createCanaryTable, DEFAULT_TABLE, type LoadResult } from './load.js';
import { type EnvTimes, type Prediction, renderPrediction } from './predict.js';

export interface RehearsalResult {
  runDir: string;
  status: string;
  exitCode: number;
  writeUnavailableMs?: number;
  maintenanceMs?: number;
  acknowledgedWrites: number;
  failedWriteAttempts: number;
  lostWrites: number;
  stepDurationsMs: Record<string, number>;
  /** Environment-set waits measured inside each step (INSYNC, DNS answers, old TTL, fixed waits, gates). */
  environmentMs: Record<string, EnvTimes>;
  /** High end of the predicted window for the environment rehearsed (same parameters). */
  predictedWindowMs?: number;
  /** The same window predicted from this and earlier rehearsals for the rehearsed environment. */
  predicted?: { lowMs: number; highMs: number };
  /** The window predicted for production (the runbook's own parameters, or --production-var-file). */
  production?: Prediction;
  /** True when production's parameters are the ones rehearsed (no --var, no --production-var-file). */
  productionIsRehearsed?: boolean;
  rehearsalsSeen: number;
}

export interface RehearseOptions {
  writers?: number;
  warmupMs?: number;
  /** How long the canary load may take to land its first write before the rehearsal gives up (ms). */
  firstWriteMs?: number;
  settleMs?: number;
  /** Production's parameters for the production prediction (default: the runbook's own). */
  productionVars?: Record<string, string>;
  /** A Route 53 propagation figure for production (ms), instead of the journals'. */
  route53Ms?: number;
}

/**
 * The runbook as production runs it: its own parameters (the template's defaults are production's)
 * or the vars given. Undefined when it cannot be prepared without the rehearsal's values.
 */
function productionRunbook(
  file: string,
  vars: Record<string, string> | undefined,
): PreparedRunbook | undefined {
  try {
    return prepareRunbookFile(file, { vars: vars ?? {}, envStrict: false });
  } catch {
    return undefined;
  }
}

export async function rehearseRunbook(
  file: string,
  o: SessionOptions,
  opts: RehearseOptions = {},
): Promise<RehearsalResult> {
  const prepared = prepareRunbookFile(file, { vars: o.vars ?? {}, envStrict: true });
  const spec = prepared.runbook.rehearsal?.load;
  if (!spec)
    throw new InputError(
      'NO_REHEARSAL',
      `${file}: add a rehearsal: { load: { database, setupOn, verifyOn } } section to rehearse this runbook`,
    );
  const db = (name: string) => {
    const d = prepared.databases[name];
    if (!d)
      throw new InputError(
        'UNKNOWN_DATABASE',
        `${file}: rehearsal names database "${name}", which is not under databases:`,
      );
    return d;
  };
  const loadDb = db(spec.database);
  const table = spec.table ?? DEFAULT_TABLE;
  const startServer = await createCanaryTable(db(spec.setupOn), table);
  const before = await resolveHost(loadDb.host, loadDb.resolvers);
  const loadId = `rehearsal-${Date.now().toString(36)}`;
  const load = new CanaryLoad(loadDb, table, loadId, opts.writers ?? spec.writers ?? 2, before.address);
  load.start();
  let run: Awaited<ReturnType<typeof runSession>>;
  let loadResult: LoadResult;
  const timer = new EnvTimer(Object.fromEntries(prepared.runbook.steps.map((s) => [s.id, s.kind])));
  try {
    await load.firstWrite(opts.firstWriteMs ?? 10_000, { serverId: startServer, name: spec.setupOn });
    await new Promise((r) => setTimeout(r, opts.warmupMs ?? 500));
    try {
      run = await runSession(
        { mode: 'run', file },
        {
          ...o,
          yes: true,
          onEvent: (e) => {
            timer.on(e);
            o.onEvent?.(e);
          },
        },
      );
    } finally {
      // Let writers land on the new primary before stopping, so the switch is measured end to end.
      await new Promise((r) => setTimeout(r, opts.settleMs ?? 1500));
    }
  } finally {
    // Whatever ended the rehearsal, its writers stop: left running they would keep the process alive.
    loadResult = await load.stop();
  }
  // Where every acknowledged write must be: on the new primary after a success, on the old one after
  // a rollback; a run that stopped halfway (halted, interrupted) left the application writing to one
  // of them, and that is where its last acknowledged write went.
  const lastServer = loadResult.acks.at(-1)?.serverId;
  const onNew =
    run.status === 'succeeded' ||
    (run.status !== 'rolled-back' && lastServer !== undefined && lastServer !== startServer);
  const verifyDb = db(onNew ? spec.verifyOn : spec.setupOn);
  const { lost, missing } = await countLostWrites(verifyDb, table, loadId, loadResult.acks);
  const stepDurationsMs = Object.fromEntries(run.timings.map((t) => [t.stepId, Math.round(t.totalMs)]));
  const environmentMs = withQuietIntervals(run.runDir, timer.result());
  const runsDir = resolve(o.runsDir);
  const succeeded = run.status === 'succeeded';
  const extra = succeeded
    ? Object.fromEntries(
        Object.entries(stepDurationsMs).map(([id, ms]) => [
          id,
          { totalMs: ms, env: environmentMs[id] ?? {} },
        ]),
      )
    : undefined;
  // This environment (same parameters) from this and earlier rehearsals; and production's.
  const extraZones = zonesOf(stepInfos(prepared));
  const here = predictFor(prepared, runsDir, extra ? { extra, extraZones } : {});
  // Without --var or --production-var-file the runbook's own parameters are what was rehearsed.
  const sameTarget = !opts.productionVars && !Object.keys(o.vars ?? {}).length;
  const prod = productionRunbook(file, opts.productionVars);
  const production = prod
    ? predictFor(prod, runsDir, {
        ...(extra ? { extra, extraZones } : {}),
        ...(opts.route53Ms !== undefined ? { route53Ms: opts.route53Ms } : {}),
      })
    : undefined;
  const result: RehearsalResult = {
    runDir: run.runDir,
    status: run.status,
    exitCode: run.exitCode,
    ...(loadResult.writeUnavailableMs !== undefined
      ? { writeUnavailableMs: Math.round(loadResult.writeUnavailableMs * 10) / 10 }
      : {}),
    ...(run.maintenanceMs !== undefined ? { maintenanceMs: Math.round(run.maintenanceMs) } : {}),
    acknowledgedWrites: loadResult.acknowledged,
    failedWriteAttempts: loadResult.failedAttempts,
    lostWrites: lost,
    stepDurationsMs,
    environmentMs,
    ...(here.rehearsals
      ? { predictedWindowMs: here.highMs, predicted: { lowMs: here.lowMs, highMs: here.highMs } }
      : {}),
    ...(production ? { production, productionIsRehearsed: sameTarget } : {}),
    rehearsalsSeen: here.rehearsals,
  };
  const journal = Journal.open(run.runDir, prepared.loaded.sha256, new Redactor(prepared.secrets));
  journal.append('rehearsal', {
    result,
    missing,
    writers: opts.writers ?? spec.writers ?? 2,
    addresses: loadResult.addresses,
  });
  journal.close();
  return result;
}

/** A drain's binlog quiet interval is a sleep the runbook sets (no progress event shows it). */
function withQuietIntervals(runDir: string, env: Record<string, EnvTimes>): Record<string, EnvTimes> {
  const out = { ...env };
  for (const r of readJournal(runDir)) {
    if (r.type !== 'step-start' || r.kind !== 'mysql.connections.drain' || !r.stepId) continue;
    const q = (r.inputs as { quiet?: string | number } | undefined)?.quiet;
    const ms = q === undefined ? undefined : parseDuration(q);
    if (ms) out[r.stepId] = { ...out[r.stepId], wait: (out[r.stepId]?.wait ?? 0) + ms };
  }
  return out;
}

export function renderRehearsal(r: RehearsalResult): string {
  const rows: [string, string][] = [
    ['result', `${r.status} (exit ${r.exitCode})`],
    [
      'write-unavailability',
      r.writeUnavailableMs !== undefined ? formatMs(r.writeUnavailableMs) : 'no switch observed',
    ],
    ['time in maintenance', r.maintenanceMs !== undefined ? formatMs(r.maintenanceMs) : 'n/a'],
    ['acknowledged writes', String(r.acknowledgedWrites)],
    ['acknowledged writes lost', String(r.lostWrites)],
    ['failed write attempts', String(r.failedWriteAttempts)],
    [
      'predicted window here',
      r.predicted
        ? `${formatMs(r.predicted.lowMs)}–${formatMs(r.predicted.highMs)} (from ${r.rehearsalsSeen} rehearsal(s), this environment's figures)`
        : 'n/a',
    ],
  ];
  const lines = ['', 'Rehearsal', ...rows.map(([k, v]) => `  ${k.padEnd(26)} ${v}`), '  step durations:'];
  for (const [id, ms] of Object.entries(r.stepDurationsMs))
    lines.push(`    ${id.padEnd(24)} ${formatMs(ms).padEnd(8)}${envText(r.environmentMs[id])}`);
  if (r.production)
    lines.push(
      renderPrediction(
        r.production,
        r.productionIsRehearsed
          ? "Predicted window (the runbook's own parameters: the environment rehearsed)"
          : 'Predicted production window',
      ),
    );
  return lines.join('\n');
}

function envText(e: EnvTimes | undefined): string {
  const parts = Object.entries(e ?? {})
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${formatMs(v)}`);
  return parts.length ? ` of which environment: ${parts.join(', ')}` : '';
}

/** CLI entry: returns the exit code. Lost writes fail the rehearsal whatever the run's status. */
export async function rehearse(
  file: string,
  o: SessionOptions,
  opts: RehearseOptions & { report?: string },
): Promise<number> {
  const r = await rehearseRunbook(file, o, opts);
  if (o.json) console.log(JSON.stringify({ type: 'rehearsal', ...r }));
  else console.log(renderRehearsal(r));
  if (opts.report) {
    const { renderReport } = await import('../report/report.js');
    writeFileSync(opts.report, renderReport(r.runDir, 'html'));
    if (!o.json) console.log(`\nreport: ${resolve(opts.report)}`);
  }
  if (r.lostWrites > 0) return ExitCode.failedRolledBack;
  return r.exitCode;
}
