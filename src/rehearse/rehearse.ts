// `cutover rehearse`: the runbook for real (sandbox or staging) under a canary write load, then the
// figures a team announces from: write-unavailability, time in maintenance, lost writes (must be 0),
// and a predicted window from this and earlier rehearsals.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ExitCode, formatMs, InputError } from '../errors.js';
import { Journal, readJournal } from '../journal/journal.js';
import { Redactor } from '../journal/redact.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { runSession, type SessionOptions } from '../session.js';
import { resolveHost } from '../adapters/resolve.js';
import { CanaryLoad, countLostWrites, createCanaryTable, DEFAULT_TABLE } from './load.js';

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
  predictedWindowMs?: number;
  rehearsalsSeen: number;
}

export async function rehearseRunbook(
  file: string,
  o: SessionOptions,
  opts: { writers?: number; warmupMs?: number; settleMs?: number } = {},
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
  await createCanaryTable(db(spec.setupOn), table);
  const before = await resolveHost(loadDb.host, loadDb.resolvers);
  const loadId = `rehearsal-${Date.now().toString(36)}`;
  const load = new CanaryLoad(loadDb, table, loadId, opts.writers ?? spec.writers ?? 2, before.address);
  load.start();
  await new Promise((r) => setTimeout(r, opts.warmupMs ?? 500));
  let run: Awaited<ReturnType<typeof runSession>>;
  try {
    run = await runSession({ mode: 'run', file }, { ...o, yes: true });
  } finally {
    // Let writers land on the new primary before stopping, so the switch is measured end to end.
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 1500));
  }
  const loadResult = await load.stop();
  // After a rollback the writes belong on the old primary: check where the app's name points now.
  const verifyDb = run.status === 'succeeded' ? db(spec.verifyOn) : db(spec.setupOn);
  const { lost, missing } = await countLostWrites(verifyDb, table, loadId, loadResult.acks);
  const stepDurationsMs = Object.fromEntries(run.timings.map((t) => [t.stepId, Math.round(t.totalMs)]));
  const history = rehearsalHistory(resolve(o.runsDir), prepared.runbook.name);
  const windows = [...history, run.status === 'succeeded' ? run.maintenanceMs : undefined].filter(
    (x): x is number => typeof x === 'number',
  );
  // Announce the worst observed window plus a quarter, so what customers are told is what happens.
  const predictedWindowMs = windows.length
    ? Math.ceil((Math.max(...windows) * 1.25) / 1000) * 1000
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
    ...(predictedWindowMs !== undefined ? { predictedWindowMs } : {}),
    rehearsalsSeen: windows.length,
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

function rehearsalHistory(runsDir: string, name: string): number[] {
  if (!existsSync(runsDir)) return [];
  const out: number[] = [];
  for (const d of readdirSync(runsDir)) {
    if (!d.includes(`-${name}-`)) continue;
    try {
      const rec = readJournal(join(runsDir, d)).find((r) => r.type === 'rehearsal');
      const ms = rec?.result as { maintenanceMs?: number; status?: string } | undefined;
      if (ms?.maintenanceMs !== undefined && ms.status === 'succeeded') out.push(ms.maintenanceMs);
    } catch {
      // not a run dir
    }
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
      'predicted window',
      r.predictedWindowMs !== undefined
        ? `${formatMs(r.predictedWindowMs)} (worst of ${r.rehearsalsSeen} rehearsal(s) + 25%)`
        : 'n/a',
    ],
  ];
  const lines = ['', 'Rehearsal', ...rows.map(([k, v]) => `  ${k.padEnd(26)} ${v}`), '  step durations:'];
  for (const [id, ms] of Object.entries(r.stepDurationsMs))
    lines.push(`    ${id.padEnd(24)} ${formatMs(ms)}`);
  return lines.join('\n');
}

/** CLI entry: returns the exit code. Lost writes fail the rehearsal whatever the run's status. */
export async function rehearse(
  file: string,
  o: SessionOptions,
  opts: { writers?: number; report?: string },
): Promise<number> {
  const r = await rehearseRunbook(file, o, { ...(opts.writers ? { writers: opts.writers } : {}) });
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
