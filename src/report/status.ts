// `cutover status`: where a run stands, from its journal alone.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { undoList } from '../engine/undo.js';
import { readJournal, verifyJournal } from '../journal/journal.js';
import type { UndoVia } from '../journal/records.js';
import { type MaintenanceState, reconstruct, type StepStatus } from '../journal/state.js';
import { formatMs } from '../errors.js';
import type { Step } from '../runbook/schema.js';
import { getKind } from '../steps/registry.js';

export interface RunStatusView {
  runDir: string;
  runId: string;
  runbook: string;
  mode: string;
  by: string;
  startedAt: string;
  status: string;
  exitCode?: number;
  message?: string;
  pointOfNoReturn?: string;
  /** As the journal says, undos included: `on` is whether the app is in maintenance now. */
  maintenance: MaintenanceState;
  /** A data-guarding undo refused and the rollback stopped there. */
  rollbackStopped?: { stepId: string; reason: string; notUndone: string[] };
  /** Where the run's output went after its terminal went away. */
  outputLog?: string;
  steps: { id: string; kind: string; status: StepStatus; durationMs?: number; error?: string }[];
  /** `head`: the hash to publish (or compare with one published); `reason` when it does not verify. */
  journal: {
    intact: boolean;
    records: number;
    badLine?: number;
    reason?: string;
    head?: string;
    anchor?: string;
  };
  /** What `cutover rollback` would undo now, in order: the engine's own rule (engine/undo.ts). */
  toUndo?: { stepId: string; via: UndoVia }[];
  next: string;
}

/** The undo list from the journal and the run's copy of its runbook (only ids, kinds and `rollback:` matter). */
function toUndo(
  runDir: string,
  s: ReturnType<typeof reconstruct>,
): { stepId: string; via: UndoVia }[] | undefined {
  try {
    // session.ts RUNBOOK_COPY; not imported, so status does not load the engine's session code.
    const doc = parse(readFileSync(join(runDir, 'runbook.yaml'), 'utf8')) as { steps?: Step[] };
    // A step with no undo (shell.run without one) is not something `cutover rollback` would undo.
    return undoList(s, doc.steps ?? [], getKind)
      .filter((u) => !u.noUndo)
      .map(({ stepId, via }) => ({ stepId, via }));
  } catch {
    return undefined; // no copy (or unreadable): status still says what the journal says
  }
}

export function statusOf(runDir: string): RunStatusView {
  const records = readJournal(runDir);
  const s = reconstruct(records);
  const v = verifyJournal(runDir);
  const said =
    s.end?.status ??
    (s.gatePending
      ? 'paused'
      : s.rollbackStartedAt
        ? 'interrupted during its rollback (no run-end record: the process stopped)'
        : 'interrupted (no run-end record: the process stopped)');
  // A journal that does not verify cannot say how the run ended (a forged run-end reads "succeeded").
  const status = v.ok ? said : `unverified (the journal does not verify): ${said}`;
  const undo = s.mode === 'plan' ? undefined : toUndo(runDir, s);
  const pending = undo
    ? undo.some((u) => u.via !== 'none')
    : [...s.steps.values()].some(
        (x) => x.status === 'done' || x.status === 'in-flight' || x.status === 'undo-failed',
      );
  let next = 'nothing to do';
  if (!v.ok)
    next = `the journal does not verify: see \`cutover log verify ${runDir}\`; resume and rollback refuse it`;
  else if (s.mode === 'plan') next = 'this was a plan; run it with `cutover run FILE --execute`';
  else if (s.rollbackStartedAt && s.end?.status !== 'rolled-back' && s.end?.status !== 'rollback-incomplete')
    next = `finish the rollback with \`cutover rollback ${runDir}\``;
  else if (!s.end || ['halted', 'paused', 'interrupted'].includes(s.end.status))
    next = `continue with \`cutover resume ${runDir}\`${pending ? ` or undo with \`cutover rollback ${runDir}\`` : ''}`;
  else if (s.end.status === 'rollback-incomplete')
    next = s.rollbackStopped
      ? `reconcile what the refused undo of "${s.rollbackStopped.stepId}" names (writes only on one server), then \`cutover rollback ${runDir}\` again`
      : [...s.steps.values()].some((x) => x.status === 'undo-failed')
        ? `fix what the failed undo names, then \`cutover rollback ${runDir}\` again`
        : // Only steps without an undo are left: another rollback cannot do them.
          `put back by hand what the steps left as they are (no undo) changed: \`cutover report ${runDir}\` says what, step by step`;
  return {
    runDir,
    runId: s.runId,
    runbook: `${s.runbookName} (${s.runbookFile})`,
    mode: s.mode,
    by: s.by,
    startedAt: s.startedAt,
    status,
    ...(s.end ? { exitCode: s.end.exitCode, message: s.end.message } : {}),
    ...(s.pointOfNoReturn ? { pointOfNoReturn: s.pointOfNoReturn } : {}),
    maintenance: s.maintenance,
    ...(s.rollbackStopped ? { rollbackStopped: s.rollbackStopped } : {}),
    ...(s.outputLog ? { outputLog: s.outputLog } : {}),
    steps: s.stepOrder.map((id) => {
      const st = s.steps.get(id)!;
      return {
        id,
        kind: st.kind,
        status: st.status,
        ...(st.durationMs !== undefined ? { durationMs: st.durationMs } : {}),
        ...(st.error ? { error: st.error.message } : {}),
      };
    }),
    journal: {
      intact: v.ok,
      records: v.records,
      ...(v.badLine ? { badLine: v.badLine } : {}),
      ...(v.reason ? { reason: v.reason } : {}),
      ...(v.headHash ? { head: v.headHash } : {}),
      ...(v.anchor ? { anchor: v.anchor } : {}),
    },
    ...(undo ? { toUndo: undo.filter((u) => u.via !== 'none') } : {}),
    next,
  };
}

export function renderStatus(v: RunStatusView): string {
  const lines = [
    `run      ${v.runId} (${v.mode}) by ${v.by}, started ${v.startedAt}`,
    `runbook  ${v.runbook}`,
    `status   ${v.status}${v.exitCode !== undefined ? ` (exit ${v.exitCode})` : ''}`,
  ];
  if (v.message) lines.push(`         ${v.message}`);
  if (v.pointOfNoReturn) lines.push(`point of no return passed at ${v.pointOfNoReturn}`);
  const m = v.maintenance;
  // Whether the app is in maintenance now, however it got there (a step, or an undo of one).
  if (m.on)
    lines.push(
      `maintenance ON since ${m.onSince}${m.enteredAt !== m.onSince ? ` (first entered ${m.enteredAt})` : ''}`,
    );
  else if (m.enteredAt) lines.push(`maintenance off: entered ${m.enteredAt}, exited ${m.exitedAt}`);
  if (v.rollbackStopped)
    lines.push(
      `rollback stopped at ${v.rollbackStopped.stepId}: ${v.rollbackStopped.reason}`,
      `         left as they are, on purpose: ${v.rollbackStopped.notUndone.join(', ') || 'nothing'}`,
    );
  if (v.outputLog) lines.push(`output  ${v.outputLog} (the terminal went away)`);
  lines.push('');
  for (const s of v.steps)
    lines.push(
      `  ${s.status.padEnd(12)} ${s.id.padEnd(24)} ${s.kind.padEnd(30)} ${s.durationMs !== undefined ? formatMs(s.durationMs) : ''}${s.error ? `  ${s.error}` : ''}`,
    );
  if (v.toUndo?.length && v.status !== 'rolled-back')
    lines.push(
      '',
      `to undo  ${v.toUndo.map((u) => (u.via === 'override' ? `${u.stepId} (runbook rollback:)` : u.stepId)).join(', ')}  (what \`cutover rollback\` would undo, in order)`,
    );
  lines.push(
    '',
    `journal  ${v.journal.intact ? `intact (${v.journal.records} records, head ${v.journal.head}, anchored by ${v.journal.anchor})` : `TAMPERED at line ${v.journal.badLine}: ${v.journal.reason}`}`,
    `next     ${v.next}`,
  );
  return lines.join('\n');
}
