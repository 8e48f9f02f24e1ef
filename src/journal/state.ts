// Rebuilds where a run stands from its journal alone: what resume, rollback and status work from.
import type { JournalRecord } from './journal.js';

export type StepStatus =
  | 'pending'
  | 'in-flight'
  | 'done'
  | 'failed'
  | 'undone'
  | 'undo-failed'
  | 'undo-skipped';

export interface StepRunState {
  id: string;
  kind: string;
  status: StepStatus;
  /** A snapshot record was written: apply may have started. */
  applyStarted: boolean;
  /** The step failed after its apply completed (in verify or an after check): the change was made. */
  applied?: boolean;
  snapshot?: unknown;
  outputs?: Record<string, unknown>;
  /** Status before undo began (done / failed / in-flight). */
  ranTo?: StepStatus;
  error?: { code: string; message: string };
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
}

export interface RunState {
  runId: string;
  runbookFile: string;
  runbookName: string;
  runbookSha256: string;
  mode: 'run' | 'plan';
  vars: Record<string, string>;
  startedAt: string;
  by: string;
  stepOrder: string[];
  steps: Map<string, StepRunState>;
  pointOfNoReturn?: string;
  maintenance: { enteredAt?: string; exitedAt?: string; budgetMs?: number };
  end?: { status: string; exitCode: number; ts: string; message?: string };
  gatePending?: string;
  /** When a rollback of the run began: from then on the run only goes backwards. */
  rollbackStartedAt?: string;
  lastTs: string;
}

export function reconstruct(records: JournalRecord[]): RunState {
  const start = records.find((r) => r.type === 'run-start');
  if (!start) throw new Error('journal has no run-start record');
  const rb = start.runbook as { file: string; name: string; sha256: string };
  const state: RunState = {
    runId: start.runId as string,
    runbookFile: rb.file,
    runbookName: rb.name,
    runbookSha256: rb.sha256,
    mode: start.mode as 'run' | 'plan',
    vars: (start.vars as Record<string, string>) ?? {},
    startedAt: start.ts,
    by: start.by,
    stepOrder: (start.steps as { id: string }[]).map((s) => s.id),
    steps: new Map(
      (start.steps as { id: string; kind: string }[]).map((s) => [
        s.id,
        { id: s.id, kind: s.kind, status: 'pending' as StepStatus, applyStarted: false },
      ]),
    ),
    maintenance: { budgetMs: start.budgetMs as number | undefined },
    lastTs: start.ts,
  };
  for (const r of records) {
    state.lastTs = r.ts;
    const s = r.stepId ? state.steps.get(r.stepId) : undefined;
    switch (r.type) {
      case 'run-resume':
      case 'rollback-start':
        state.end = undefined;
        state.gatePending = undefined;
        if (r.type === 'rollback-start') state.rollbackStartedAt ??= r.ts;
        break;
      case 'step-start':
        if (s) {
          s.status = 'in-flight';
          s.startedAt = r.ts;
          s.error = undefined;
        }
        break;
      case 'snapshot':
        if (s) {
          s.applyStarted = true;
          s.snapshot = r.snapshot;
        }
        break;
      case 'step-done':
        if (s) {
          s.status = 'done';
          s.outputs = (r.outputs as Record<string, unknown>) ?? {};
          s.endedAt = r.ts;
          s.durationMs = r.durationMs as number;
        }
        break;
      case 'step-failed':
        if (s) {
          s.status = 'failed';
          if (r.applied === true) s.applied = true;
          s.error = r.error as { code: string; message: string };
          s.endedAt = r.ts;
          s.durationMs = r.durationMs as number;
        }
        break;
      case 'undo-start':
        // A later attempt keeps what the step first ran to: that decides whether it is undone again.
        if (s && s.status !== 'undone' && s.status !== 'undo-failed') s.ranTo = s.status;
        break;
      case 'undo-done':
        if (s) s.status = 'undone';
        break;
      case 'undo-failed':
        if (s) {
          s.status = 'undo-failed';
          s.error = r.error as { code: string; message: string };
        }
        break;
      case 'undo-skipped':
        if (s) s.status = 'undo-skipped';
        break;
      case 'point-of-no-return':
        state.pointOfNoReturn = r.stepId;
        break;
      case 'maintenance':
        if (r.state === 'entered') state.maintenance.enteredAt = r.ts;
        if (r.state === 'exited') state.maintenance.exitedAt = r.ts;
        break;
      case 'gate':
        if (r.decision === 'needs-approval') state.gatePending = r.stepId;
        break;
      case 'run-end':
        state.end = {
          status: r.status as string,
          exitCode: r.exitCode as number,
          ts: r.ts,
          message: r.message as string,
        };
        break;
    }
  }
  return state;
}
