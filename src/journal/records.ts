// Every record type the engine and the session write to journal.jsonl, in one place: the schema of
// the journal. `Journal.append` only accepts these, and `reduce` (state.ts) handles each one.
import type { PlannedChange } from '../adapters/adapters.js';
import type { Leftover } from '../engine/events.js';

/**
 * Journal format version, written on run-start. 1 = records before this file existed (no `v`):
 * the same record shapes minus the additions below, still read. Newer than this build: refused.
 */
export const JOURNAL_VERSION = 2;

export interface ErrorRecord {
  code: string;
  message: string;
  /** StepError.details (smoke and maintenance evidence), redacted like every other field. */
  details?: Record<string, unknown>;
}

export type UndoVia = 'kind' | 'override' | 'none';

/** The data of each record type (the envelope — seq, ts, by, prev, hash — is added by the journal). */
export type JournalEntry =
  | {
      type: 'run-start';
      v?: number;
      runId: string;
      mode: 'run' | 'plan';
      runbook: { file: string; name: string; sha256: string };
      vars: Record<string, string>;
      operator?: string;
      node?: string;
      cwd?: string;
      budgetMs?: number | undefined;
      steps: { id: string; kind: string }[];
    }
  | { type: 'run-resume' }
  | {
      type: 'gate';
      stepId: string;
      decision: 'approved' | 'declined' | 'needs-approval';
      via?: '--yes' | 'prompt';
    }
  | { type: 'step-start'; stepId: string; kind: string; inputs: unknown; resumed?: boolean }
  | { type: 'snapshot'; stepId: string; snapshot: unknown }
  | { type: 'step-retry'; stepId: string; attempt: number; delayMs: number; error: ErrorRecord }
  | { type: 'step-reconciled'; stepId: string; applied: boolean }
  | {
      type: 'step-done';
      stepId: string;
      outputs: Record<string, unknown>;
      durationMs: number;
      actionMs?: number;
    }
  | { type: 'step-failed'; stepId: string; error: ErrorRecord; durationMs: number; applied?: boolean }
  | {
      type: 'check';
      stepId: string;
      phase: 'before' | 'after';
      check: string;
      ok: boolean;
      error?: ErrorRecord;
    }
  | { type: 'plan'; stepId: string; lines: string[]; recorded: PlannedChange[] }
  | { type: 'plan-check-deferred'; stepId: string; error: ErrorRecord; durationMs: number }
  /** A step's preflight (checks no earlier change can alter) refused it before the first step ran. */
  | { type: 'preflight-failed'; stepId: string; error: ErrorRecord }
  | { type: 'warning'; stepId: string; message: string }
  | {
      type: 'maintenance';
      state: 'entered' | 'exited';
      budgetMs?: number | undefined;
      elapsedMs?: number;
      /** Set when an undo switched maintenance (undoing `enter` ends it, undoing `exit` restarts it). */
      via?: 'undo';
    }
  | { type: 'point-of-no-return'; stepId: string }
  | { type: 'rollback-start'; reason: string; steps: string[]; undo?: { stepId: string; via: UndoVia }[] }
  | { type: 'undo-start'; stepId: string; via?: UndoVia }
  | { type: 'undo-done'; stepId: string; durationMs: number }
  | { type: 'undo-failed'; stepId: string; error: ErrorRecord; guardsData?: boolean }
  | { type: 'undo-skipped'; stepId: string; reason: string }
  | {
      /** A data-guarding undo refused: the steps before it were left as they are, on purpose. */
      type: 'rollback-stopped';
      stepId: string;
      reason: string;
      notUndone: string[];
    }
  | {
      /** The operator's terminal went away (SIGHUP, EPIPE): the run's output goes to this file now. */
      type: 'output-redirected';
      cause: string;
      log: string;
    }
  | {
      type: 'run-end';
      status: string;
      exitCode: number;
      message: string;
      durationMs?: number;
      leftovers: Leftover[];
      maintenanceMs?: number;
      adapterStats?: unknown;
    }
  | { type: 'rehearsal'; result: unknown; missing?: unknown; writers?: number; addresses?: unknown };

export type RecordType = JournalEntry['type'];
export type EntryOf<T extends RecordType> = Extract<JournalEntry, { type: T }>;
/** What append takes: the record's fields without its type. */
export type EntryData<T extends RecordType> = Omit<EntryOf<T>, 'type'>;

interface Envelope {
  seq: number;
  ts: string;
  by: string;
  runbookSha256: string;
  prev: string;
  hash: string;
}

/** A record as read back from journal.jsonl. */
export type TypedRecord = JournalEntry & Envelope;

/** Every record type, checked against the union both ways (a missing or extra name fails tsc). */
export const RECORD_TYPES = [
  'run-start',
  'run-resume',
  'gate',
  'step-start',
  'snapshot',
  'step-retry',
  'step-reconciled',
  'step-done',
  'step-failed',
  'check',
  'plan',
  'plan-check-deferred',
  'preflight-failed',
  'warning',
  'maintenance',
  'point-of-no-return',
  'rollback-start',
  'undo-start',
  'undo-done',
  'undo-failed',
  'undo-skipped',
  'rollback-stopped',
  'output-redirected',
  'run-end',
  'rehearsal',
] as const satisfies readonly RecordType[];
type Missing = Exclude<RecordType, (typeof RECORD_TYPES)[number]>;
const _allListed: Missing extends never ? true : Missing = true;
void _allListed;
