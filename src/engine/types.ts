// The contract between the engine and step kinds. A kind is a small object; the engine owns the
// lifecycle (checks, snapshot journaled before apply, verify, undo, retries, timeouts).
import type { z } from 'zod';
import type { SourcePos, ValidationIssue } from '../errors.js';
import type { Adapters } from '../adapters/adapters.js';
import type { DatabaseConfig } from '../runbook/schema.js';

export interface Progress {
  /** What is being waited on, e.g. "replica lag 3.2s > 1s". */
  label: string;
  /** Epoch ms at which the wait gives up, for a countdown. */
  deadline?: number;
  current?: number;
  total?: number;
}

export interface PollOptions<T> {
  /** Shown in progress and in the timeout error. */
  what: string;
  timeoutMs: number;
  intervalMs: number;
  /** One attempt: done=true ends the wait with value; status feeds the progress line. */
  check: () => Promise<{ done: boolean; value?: T; status?: string }>;
}

export interface StepContext {
  readonly runId: string;
  readonly runDir: string;
  readonly stepId: string;
  /** Informational (hooks, messages). Kinds never branch on it: dry run swaps the adapters instead. */
  readonly dryRun: boolean;
  readonly signal: AbortSignal;
  readonly adapters: Adapters;
  /** The runbook's maintenance budget, for kinds whose waits must fit in it (DNS TTLs). */
  readonly budgetMs?: number;
  /** Resolved connection settings of a named database (secrets included; never log them). */
  database(name: string): DatabaseConfig;
  /** The run's secrets replaced, for what leaves the tool other than by the journal (webhooks). */
  redact?<T>(value: T): T;
  log(message: string): void;
  warn(message: string): void;
  progress(p: Progress): void;
  /** Abortable sleep. */
  sleep(ms: number): Promise<void>;
  /** Poll until check says done, the deadline passes (StepError WAIT_TIMEOUT) or the run aborts. */
  poll<T>(opts: PollOptions<T>): Promise<T>;
}

export interface ValidateContext {
  /** Where the step's `with` is in the runbook, for messages. */
  pos(path: (string | number)[]): SourcePos;
  issue(path: (string | number)[], message: string, severity?: 'error' | 'warning'): void;
  databases: ReadonlySet<string>;
  budgetMs: number | undefined;
}

export interface IamNeed {
  actions: string[];
  /** ARNs when the runbook names the resource; '*' otherwise. */
  resources?: string[];
  /** Needed by the dry run too (reads), or only by the real run (writes). */
  mode: 'read' | 'write';
}

type Outputs = Record<string, unknown>;

export interface StepKind<P = any, S = any, O extends Outputs = Outputs> {
  readonly kind: string;
  /** One line: what the kind does (used in `--help`, the JSON Schema and "did you mean"). */
  readonly summary: string;
  readonly params: z.ZodType<P>;
  /** Reads only (but for `writes`): usable as a before/after check and never undone. */
  readonly readOnly?: boolean;
  /**
   * What a readOnly kind writes anyway, as its own bookkeeping (never the application's data): `tag`
   * is what a before/after check must acknowledge (`writes: <tag>`), `summary` says it in `kinds`,
   * and `describe` says it for these params in plans (undefined: these params write nothing).
   */
  readonly writes?: { tag: string; summary: string; describe(p: P): string | undefined };
  /** Output names other steps may reference as ${steps.<id>.outputs.<name>}. */
  readonly outputs?: readonly string[];
  /** `with` keys whose ${...} substitutions are shell-quoted into single words. */
  readonly shellFields?: readonly string[];
  /** `with` keys whose ${...} substitutions become JSON literals (expressions). */
  readonly exprFields?: readonly string[];
  /** The maintenance budget clock starts when an `enter` step is applied and stops after `exit`. */
  readonly maintenance?: 'enter' | 'exit';
  /** Its undo loses data once the new side took writes: must not sit after a point of no return. */
  readonly undoUnsafeAfterNewWrites?: boolean;
  /** While healthy, it makes a rollback past the point of no return safe (reverse replication). */
  readonly keepsRollbackSafe?: boolean;
  /** Load heavy modules (SDK clients, drivers) before the run starts, not inside the maintenance window. */
  preload?(): Promise<unknown>;
  /** Names of runbook databases the params reference (validated against `databases:`). */
  databases?(p: P): string[];
  /** Semantic checks beyond the schema. */
  validate?(p: P, v: ValidateContext): void;
  /** IAM permissions the step needs (for `cutover iam-policy`). */
  iam?(p: P): IamNeed[];
  /** Future-tense lines for plans: what apply would change, with before → after where known. */
  describe(p: P, snapshot: S | undefined): string[];
  /** `with` keys the preflight reads: it runs even while other keys wait on earlier steps' outputs. */
  readonly preflightReads?: readonly string[];
  /**
   * Read-only checks that do not depend on any earlier step's change: plan and run call it for
   * every step before the first step runs (privileges, what the platform allows, server settings).
   */
  preflight?(ctx: StepContext, params: P): Promise<void>;
  /** Read the state apply is about to change; journaled (fsync'd) before apply runs. */
  snapshot?(ctx: StepContext, p: P): Promise<S>;
  /** Make the change. Writes go through ctx.adapters so the dry run records them instead. */
  apply(ctx: StepContext, p: P, snapshot: S): Promise<O | undefined | void>;
  /** Confirm the change took (and wait for it to settle). Skipped in dry run. */
  verify?(ctx: StepContext, p: P, snapshot: S, outputs: O): Promise<void>;
  /** Put back what the snapshot recorded. Must be safe to call twice. */
  undo?(ctx: StepContext, p: P, snapshot: S, outputs: O | undefined): Promise<void>;
  /**
   * Whether this step's raw `with` gives it an undo (default yes when `undo` exists). No: a rollback
   * leaves the change as it is and lists it for a human instead of calling it rolled back.
   */
  hasUndo?(rawWith: Record<string, unknown>): boolean;
  /**
   * For a human, when the undo did not run or failed: what to put back, from the snapshot and the
   * outputs (imperative: "put back tcp/3306 from 10.0.0.0/24 on sg-1 (was revoked)"), not what apply did.
   */
  restoreHint?(p: P, snapshot: S | undefined, outputs: O | undefined): string[];
  /** After a crash mid-apply: did the change happen? Defaults to verify() passing. */
  isApplied?(ctx: StepContext, p: P, snapshot: S): Promise<boolean>;
  /**
   * Reads only: why this step's undo would refuse now (new writes the old side lacks), or undefined.
   * Asked before a rollback past the point of no return undoes anything: pointing clients back at a
   * server that lacks their writes would be worse than stopping.
   */
  undoBlocker?(ctx: StepContext, p: P, snapshot: S, outputs: O | undefined): Promise<string | undefined>;
  /** For keepsRollbackSafe kinds: is the safety net healthy right now? */
  isRollbackSafe?(ctx: StepContext, p: P, snapshot: S, outputs: O | undefined): Promise<boolean>;
}

export function defineKind<P, S = undefined, O extends Outputs = Outputs>(
  k: StepKind<P, S, O>,
): StepKind<P, S, O> {
  return k;
}

export type { ValidationIssue };
