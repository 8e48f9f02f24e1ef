// Where a run stands, as a fold over its journal: `reduce(state, record)` is the one place a record
// changes state. The executor applies it live to every record it writes; resume, rollback, status
// and the report apply it to the records read back. What one believes, the other reads.
import { CutoverError, ExitCode } from '../errors.js';
import type { JournalRecord } from './journal.js';
import { type ErrorRecord, JOURNAL_VERSION, type TypedRecord } from './records.js';

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
  error?: ErrorRecord;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
}

export interface MaintenanceState {
  /** First time maintenance was switched on, and the last time it was switched off. */
  enteredAt?: string;
  exitedAt?: string;
  budgetMs?: number;
  /** Whether the app is in maintenance now, as far as the journal knows (undos switch it too). */
  on: boolean;
  /** Start of the current maintenance period, while on: the budget clock counts from here. */
  onSince?: string;
  /** Length of the last window, from its exit record. */
  elapsedMs?: number;
}

export interface RunState {
  /** Journal format version of the run (1: written before versioning). */
  version: number;
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
  maintenance: MaintenanceState;
  end?: { status: string; exitCode: number; ts: string; message?: string };
  gatePending?: string;
  /** When a rollback of the run began: from then on the run only goes backwards. */
  rollbackStartedAt?: string;
  /** A data-guarding undo refused and the rollback stopped there (the rest left on purpose). */
  rollbackStopped?: { stepId: string; reason: string; notUndone: string[] };
  /** Where the run's output went after its terminal went away. */
  outputLog?: string;
  /** Plan mode: failing steps (each counted once), and writes recorded so far. */
  planFailures: number;
  /** Steps refused by their preflight: failures wherever they sit, never deferred. */
  preflightFailed: string[];
  /** Plan mode: checks that depend on an earlier step's recorded write, listed apart. */
  deferred: string[];
  plannedWrites: number;
  lastTs: string;
}

// Bad input (exit 2), not an internal error: the directory is not a whole run.
const noStart = () =>
  new CutoverError('JOURNAL_INCOMPLETE', 'journal has no run-start record', { exitCode: ExitCode.badInput });

/** The records that start a state; anything else before a run-start is an incomplete journal. */
function initial(r: Extract<TypedRecord, { type: 'run-start' }>): RunState {
  const version = r.v ?? 1;
  if (version > JOURNAL_VERSION)
    throw new CutoverError(
      'JOURNAL_VERSION',
      `journal format v${version} was written by a newer cutover (this one reads up to v${JOURNAL_VERSION}); use that version for this run`,
      { exitCode: ExitCode.badInput },
    );
  return {
    version,
    runId: r.runId,
    runbookFile: r.runbook.file,
    runbookName: r.runbook.name,
    runbookSha256: r.runbook.sha256,
    mode: r.mode,
    vars: r.vars ?? {},
    startedAt: r.ts,
    by: r.by,
    stepOrder: r.steps.map((s) => s.id),
    steps: new Map(
      r.steps.map((s) => [s.id, { id: s.id, kind: s.kind, status: 'pending', applyStarted: false }]),
    ),
    maintenance: { on: false, ...(r.budgetMs !== undefined ? { budgetMs: r.budgetMs } : {}) },
    planFailures: 0,
    preflightFailed: [],
    deferred: [],
    plannedWrites: 0,
    lastTs: r.ts,
  };
}

/** State after one more record. Pure: the state passed in is not changed. */
export function reduce(prev: RunState | undefined, r: TypedRecord): RunState {
  if (r.type === 'run-start') return prev ?? initial(r);
  if (!prev) throw noStart();
  const state: RunState = {
    ...prev,
    steps: new Map(prev.steps),
    maintenance: { ...prev.maintenance },
    lastTs: r.ts,
  };
  /** A copy of the record's step, put in the new state (records naming unknown steps change nothing). */
  const step = (id: string): StepRunState | undefined => {
    const s = state.steps.get(id);
    if (!s) return undefined;
    const copy = { ...s };
    state.steps.set(id, copy);
    return copy;
  };
  switch (r.type) {
    case 'run-resume':
      state.end = undefined;
      state.gatePending = undefined;
      break;
    case 'rollback-start':
      state.end = undefined;
      state.gatePending = undefined;
      state.rollbackStartedAt ??= r.ts;
      state.rollbackStopped = undefined;
      break;
    case 'step-start': {
      const s = step(r.stepId);
      if (s) {
        s.status = 'in-flight';
        s.startedAt = r.ts;
        s.error = undefined;
      }
      break;
    }
    case 'snapshot': {
      const s = step(r.stepId);
      if (s) {
        s.applyStarted = true;
        s.snapshot = r.snapshot;
      }
      break;
    }
    case 'step-done': {
      const s = step(r.stepId);
      if (s) {
        s.status = 'done';
        s.outputs = r.outputs ?? {};
        s.endedAt = r.ts;
        s.durationMs = r.durationMs;
      }
      break;
    }
    case 'step-failed': {
      const s = step(r.stepId);
      if (s) {
        s.status = 'failed';
        if (r.applied === true) s.applied = true;
        s.error = r.error;
        s.endedAt = r.ts;
        s.durationMs = r.durationMs;
      }
      if (state.mode === 'plan' && !state.preflightFailed.includes(r.stepId)) state.planFailures += 1;
      break;
    }
    case 'preflight-failed':
      if (!state.preflightFailed.includes(r.stepId)) {
        state.preflightFailed.push(r.stepId);
        if (state.mode === 'plan') state.planFailures += 1;
      }
      break;
    case 'plan-check-deferred':
      state.deferred.push(r.stepId);
      break;
    case 'undo-start': {
      // A later attempt keeps what the step first ran to: that decides whether it is undone again.
      const s = step(r.stepId);
      if (s && s.status !== 'undone' && s.status !== 'undo-failed') s.ranTo = s.status;
      break;
    }
    case 'undo-done': {
      const s = step(r.stepId);
      if (s) s.status = 'undone';
      break;
    }
    case 'undo-failed': {
      const s = step(r.stepId);
      if (s) {
        s.status = 'undo-failed';
        s.error = r.error;
      }
      break;
    }
    case 'undo-skipped': {
      const s = step(r.stepId);
      if (s) s.status = 'undo-skipped';
      break;
    }
    case 'rollback-stopped':
      state.rollbackStopped = { stepId: r.stepId, reason: r.reason, notUndone: r.notUndone };
      break;
    case 'point-of-no-return':
      state.pointOfNoReturn = r.stepId;
      break;
    case 'maintenance':
      if (r.state === 'entered') {
        state.maintenance.enteredAt ??= r.ts;
        if (!state.maintenance.on) state.maintenance.onSince = r.ts;
        state.maintenance.on = true;
      } else {
        state.maintenance.exitedAt = r.ts;
        if (r.elapsedMs !== undefined) state.maintenance.elapsedMs = r.elapsedMs;
        state.maintenance.on = false;
        state.maintenance.onSince = undefined;
      }
      break;
    case 'gate':
      if (r.decision === 'needs-approval') state.gatePending = r.stepId;
      break;
    case 'plan':
      state.plannedWrites += r.recorded?.length ?? 0;
      break;
    case 'output-redirected':
      state.outputLog = r.log;
      break;
    case 'run-end':
      state.end = { status: r.status, exitCode: r.exitCode, ts: r.ts, message: r.message };
      break;
    // Evidence only: they change no state (the report reads them).
    case 'step-retry':
    case 'step-reconciled':
    case 'check':
    case 'warning':
    case 'rehearsal':
      break;
    default: {
      // A record type added to records.ts and not handled here fails tsc on this line.
      const unhandled: never = r;
      void unhandled;
    }
  }
  return state;
}

/** The state after every record: what resume, rollback and status work from. */
export function reconstruct(records: readonly JournalRecord[]): RunState {
  let state: RunState | undefined;
  // The one place read-back records meet the union; unknown types fall through reduce unchanged.
  for (const r of records as unknown as TypedRecord[]) state = reduce(state, r);
  if (!state) throw noStart();
  return state;
}
