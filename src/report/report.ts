// `cutover report`: a run's timeline from its journal, as Markdown (ticket) or JSON.
import { readJournal, verifyJournal, type JournalRecord } from '../journal/journal.js';
import { reconstruct } from '../journal/state.js';
import { formatMs } from '../errors.js';
import { type ResourceChange, resourceChanges } from './changes.js';
import { renderHtml } from './html.js';

export interface ReportCheck {
  atMs: number;
  phase: string;
  check: string;
  ok: boolean;
  error?: string;
}

export interface ReportStep {
  id: string;
  kind: string;
  status: string;
  startMs?: number;
  endMs?: number;
  durationMs?: number;
  error?: string;
  undo?: { startMs: number; endMs?: number; ok: boolean; error?: string };
  /** How far the step got before any undo: done, failed or in-flight. */
  ranTo?: string;
  /** When the snapshot was journaled: before checks and the snapshot are over, the change begins. */
  applyStartMs?: number;
  inputs?: unknown;
  outputs?: Record<string, unknown>;
  snapshot?: unknown;
  checks: ReportCheck[];
  retries: { atMs: number; attempt: number; delayMs: number; error?: string }[];
  gate?: { decision: string; via?: string };
  plan?: string[];
  undoSkipped?: string;
}

export interface ReportModel {
  runId: string;
  runbook: string;
  by: string;
  mode: string;
  startedAt: string;
  endedAt: string;
  status: string;
  message?: string;
  exitCode?: number;
  integrity: {
    ok: boolean;
    records: number;
    badLine?: number;
    reason?: string;
    headHash?: string;
    unanchored?: boolean;
  };
  budgetMs?: number;
  /** endMs/durationMs without an `exited` record: the window closed with the entering step's undo (or the run's end); open is then true. */
  maintenance?: { startMs: number; endMs?: number; durationMs?: number; open?: boolean; stepId?: string };
  steps: ReportStep[];
  /** Each changed resource before → after (→ restored), for the kinds changes.ts reads. */
  resources: ResourceChange[];
  /** Snapshots of the other kinds, shown as recorded. */
  changes: { stepId: string; snapshot: unknown; outputs: unknown }[];
  /** Every decision at an approval gate: who (the OS account that wrote the record), how, when. */
  approvals: { stepId: string; decision: string; by: string; via?: string; at: string; atMs: number }[];
  /** Clock time of the first maintenance record and of its exit, when recorded. */
  maintenanceAt?: { entered: string; exited?: string };
  rehearsal?: Record<string, unknown>;
  /** The rehearsal record's other fields (writers, missing writes, addresses seen). */
  rehearsalInfo?: Record<string, unknown>;
  pointOfNoReturn?: { stepId: string; atMs: number };
  rollback?: { atMs: number; reason: string; steps: string[] };
  resumedAtMs: number[];
  warnings: { atMs: number; stepId?: string; message: string }[];
  leftovers: { stepId: string; kind: string; problem: string; change: string[] }[];
  totalMs: number;
}

export function reportModel(runDir: string): ReportModel {
  const records = readJournal(runDir);
  const s = reconstruct(records);
  const t0 = Date.parse(records[0]!.ts);
  const at = (r: JournalRecord) => Date.parse(r.ts) - t0;
  const msg = (e: unknown) => (e as { message?: string } | undefined)?.message;
  const steps = s.stepOrder.map((id): ReportStep => {
    const st = s.steps.get(id)!;
    const mine = records.filter((r) => r.stepId === id);
    const start = mine.find((r) => r.type === 'step-start');
    const end = mine.findLast((r) => r.type === 'step-done' || r.type === 'step-failed');
    const snap = mine.findLast((r) => r.type === 'snapshot');
    const us = mine.findLast((r) => r.type === 'undo-start');
    const ue = us && mine.find((r) => r.seq > us.seq && (r.type === 'undo-done' || r.type === 'undo-failed'));
    const gate = mine.findLast((r) => r.type === 'gate');
    const plan = mine.findLast((r) => r.type === 'plan');
    const skipped = mine.findLast((r) => r.type === 'undo-skipped');
    // A dry run journals a plan record, not step-done, for each step it planned.
    const status = st.status === 'in-flight' && plan && !end ? 'planned' : st.status;
    return {
      id,
      kind: st.kind,
      status,
      ...(start ? { startMs: at(start) } : {}),
      ...((end ?? plan) ? { endMs: at((end ?? plan)!) } : {}),
      ...(st.durationMs !== undefined ? { durationMs: st.durationMs } : {}),
      ...(st.error ? { error: st.error.message } : {}),
      ...(us
        ? {
            undo: {
              startMs: at(us),
              ...(ue ? { endMs: at(ue) } : {}),
              ok: ue?.type === 'undo-done',
              ...(ue?.type === 'undo-failed' ? { error: msg(ue.error) ?? '' } : {}),
            },
          }
        : {}),
      ...(start ? { ranTo: st.ranTo ?? (status === 'undo-skipped' ? 'done' : status) } : {}),
      ...(snap ? { applyStartMs: at(snap) } : {}),
      ...(start?.inputs !== undefined ? { inputs: start.inputs } : {}),
      ...(st.outputs ? { outputs: st.outputs } : {}),
      ...(st.snapshot !== undefined && st.snapshot !== null ? { snapshot: st.snapshot } : {}),
      checks: mine
        .filter((r) => r.type === 'check')
        .map((r) => ({
          atMs: at(r),
          phase: String(r.phase),
          check: String(r.check),
          ok: r.ok === true,
          ...(msg(r.error) ? { error: msg(r.error)! } : {}),
        })),
      retries: mine
        .filter((r) => r.type === 'step-retry')
        .map((r) => ({
          atMs: at(r),
          attempt: Number(r.attempt),
          delayMs: Number(r.delayMs),
          ...(msg(r.error) ? { error: msg(r.error)! } : {}),
        })),
      ...(gate
        ? { gate: { decision: String(gate.decision), ...(gate.via ? { via: String(gate.via) } : {}) } }
        : {}),
      ...(plan ? { plan: plan.lines as string[] } : {}),
      ...(skipped ? { undoSkipped: String(skipped.reason) } : {}),
    };
  });
  const mIn = records.find((r) => r.type === 'maintenance' && r.state === 'entered');
  const mOut = records.find((r) => r.type === 'maintenance' && r.state === 'exited');
  const end = records.at(-1)!;
  const runEnd = records.findLast((r) => r.type === 'run-end');
  const rehearsal = records.findLast((r) => r.type === 'rehearsal');
  const pnr = records.find((r) => r.type === 'point-of-no-return');
  const rb = records.findLast((r) => r.type === 'rollback-start');
  let maintenance: ReportModel['maintenance'];
  if (mIn) {
    // The step applying when maintenance was entered owns the window; its undo closes it on a rollback.
    const stepId = records.findLast((r) => r.seq < mIn.seq && r.type === 'step-start')?.stepId;
    const closed =
      mOut ??
      records.find((r) => r.seq > mIn.seq && r.stepId === stepId && r.type === 'undo-done') ??
      runEnd ??
      end;
    maintenance = {
      startMs: at(mIn),
      endMs: at(closed),
      durationMs: mOut ? (mOut.elapsedMs as number) : at(closed) - at(mIn),
      ...(mOut ? {} : { open: true }),
      ...(stepId ? { stepId } : {}),
    };
  }
  const resources = resourceChanges(records);
  const readSteps = new Set(resources.map((c) => c.stepId));
  const { result: rehearsalResult, ...rehearsalInfo } = (rehearsal ?? {}) as Record<string, unknown>;
  for (const k of ['seq', 'ts', 'type', 'by', 'runbookSha256', 'prev', 'hash']) delete rehearsalInfo[k];
  return {
    runId: s.runId,
    runbook: `${s.runbookName} (${s.runbookFile})`,
    by: s.by,
    mode: s.mode,
    startedAt: s.startedAt,
    endedAt: end.ts,
    status: s.end?.status ?? 'interrupted',
    ...(s.end?.message ? { message: s.end.message } : {}),
    ...(s.end ? { exitCode: s.end.exitCode } : {}),
    integrity: verifyJournal(runDir),
    ...(s.maintenance.budgetMs !== undefined ? { budgetMs: s.maintenance.budgetMs } : {}),
    ...(maintenance ? { maintenance } : {}),
    steps,
    resources,
    approvals: records
      .filter((r) => r.type === 'gate')
      .map((r) => ({
        stepId: r.stepId!,
        decision: String(r.decision),
        by: r.by,
        ...(r.via ? { via: String(r.via) } : {}),
        at: r.ts,
        atMs: at(r),
      })),
    ...(mIn ? { maintenanceAt: { entered: mIn.ts, ...(mOut ? { exited: mOut.ts } : {}) } } : {}),
    changes: records
      .filter((r) => r.type === 'snapshot' && r.snapshot !== null && !readSteps.has(r.stepId!))
      .map((r) => ({
        stepId: r.stepId!,
        snapshot: r.snapshot,
        outputs: s.steps.get(r.stepId!)?.outputs,
      })),
    ...(rehearsal ? { rehearsal: rehearsalResult as Record<string, unknown>, rehearsalInfo } : {}),
    ...(pnr ? { pointOfNoReturn: { stepId: pnr.stepId!, atMs: at(pnr) } } : {}),
    ...(rb
      ? { rollback: { atMs: at(rb), reason: String(rb.reason), steps: (rb.steps as string[]) ?? [] } }
      : {}),
    resumedAtMs: records.filter((r) => r.type === 'run-resume').map(at),
    warnings: records
      .filter((r) => r.type === 'warning')
      .map((r) => ({ atMs: at(r), ...(r.stepId ? { stepId: r.stepId } : {}), message: String(r.message) })),
    leftovers: (runEnd?.leftovers as ReportModel['leftovers']) ?? [],
    totalMs: at(end),
  };
}

export function renderReport(runDir: string, format: 'md' | 'html' | 'json'): string {
  const m = reportModel(runDir);
  if (format === 'json') return `${JSON.stringify(m, null, 2)}\n`;
  if (format === 'html') return renderHtml(m);
  return renderMarkdown(m);
}

export function renderMarkdown(m: ReportModel): string {
  const lines = [
    `# Cutover ${m.mode === 'plan' ? 'plan' : 'run'} ${m.runId}`,
    '',
    `- **Runbook:** ${m.runbook}`,
    `- **Operator:** ${m.by}`,
    `- **Started:** ${m.startedAt} — **ended:** ${m.endedAt} (${formatMs(m.totalMs)})`,
    `- **Result:** ${m.status}${m.message ? ` — ${m.message}` : ''}`,
    `- **Journal:** ${m.integrity.ok ? `hash chain intact (${m.integrity.records} records, head \`${m.integrity.headHash}\`)` : m.integrity.unanchored ? `hash chain whole (head \`${m.integrity.headHash}\`) but **not anchored here**: no journal key on this host — check it with \`cutover log verify RUN_DIR --expect-head\` and the published head` : `**TAMPERED** at line ${m.integrity.badLine}: ${m.integrity.reason}`}`,
  ];
  if (m.maintenance)
    lines.push(
      `- **Time in maintenance** (maintenance page on → off${m.maintenanceAt ? `, ${m.maintenanceAt.entered} → ${m.maintenanceAt.exited ?? 'no exit recorded'}` : ''}): ${m.maintenance.durationMs !== undefined ? formatMs(m.maintenance.durationMs) : 'not exited'}${m.budgetMs !== undefined ? ` of a ${formatMs(m.budgetMs)} budget` : ''}`,
    );
  if (m.rehearsal) {
    const r = m.rehearsal as Record<string, number | undefined>;
    lines.push(
      `- **Write-unavailability** (measured by the rehearsal's writers: first failed write → first accepted): ${r.writeUnavailableMs !== undefined ? formatMs(r.writeUnavailableMs) : 'n/a'}; acknowledged writes lost: ${r.lostWrites ?? 'n/a'}`,
    );
  }
  for (const a of m.approvals)
    lines.push(
      `- **Gate ${a.stepId}:** ${a.decision} by ${a.by}${a.via ? ` (${a.via === '--yes' ? 'pre-approved with --yes' : a.via})` : ''} at ${a.at}`,
    );
  lines.push('', '| # | step | kind | status | started | duration |', '|---|---|---|---|---|---|');
  m.steps.forEach((s, i) => {
    lines.push(
      `| ${i + 1} | ${s.id} | \`${s.kind}\` | ${s.status}${s.error ? ` — ${s.error.replace(/\|/g, '\\|')}` : ''} | ${s.startMs !== undefined ? `+${formatMs(s.startMs)}` : ''} | ${s.durationMs !== undefined ? formatMs(s.durationMs) : ''} |`,
    );
  });
  if (m.leftovers.length) {
    lines.push('', '## Needs a human', '');
    for (const l of m.leftovers)
      lines.push(`- **${l.stepId}** (\`${l.kind}\`): ${l.problem}`, ...l.change.map((c) => `  - ${c}`));
  }
  if (m.resources.length) {
    lines.push('', '## What changed, per resource', '');
    for (const c of m.resources) {
      lines.push(
        `- **${c.resource}** (step ${c.stepId}) — ${c.outcome}${c.restoredAt ? ` at ${c.restoredAt}` : ''}`,
        `  - before: ${c.before.map((l) => `\`${l}\``).join(', ') || '(none)'}`,
        `  - after: ${c.after.map((l) => `\`${l}\``).join(', ') || '(none)'}`,
      );
    }
  }
  if (m.changes.length) {
    lines.push('', '## Other changed resources (state before each step)', '');
    for (const c of m.changes)
      lines.push(`- **${c.stepId}** before: \`${JSON.stringify(c.snapshot).slice(0, 400)}\``);
  }
  return `${lines.join('\n')}\n`;
}
