// Typed events: the engine emits, renderers (terminal, plain log, JSON) subscribe. It never prints.
export type StepState =
  | 'pending'
  | 'awaiting-approval'
  | 'checking'
  | 'running'
  | 'verifying'
  | 'retrying'
  | 'done'
  | 'planned'
  | 'failed'
  | 'skipped'
  | 'rolling-back'
  | 'rolled-back'
  | 'rollback-failed';

export type RunStatus =
  | 'succeeded'
  | 'planned'
  | 'plan-failed'
  | 'rolled-back'
  | 'rollback-incomplete'
  | 'halted'
  | 'paused'
  | 'interrupted';

export interface ErrorInfo {
  code: string;
  message: string;
}

/** Something a human must look at: an undo that failed, or a change left in place on purpose. */
export interface Leftover {
  stepId: string;
  kind: string;
  problem: string;
  /** What to put back (from the snapshot), said as the work to do by hand. */
  change: string[];
}

export type EngineEvent =
  | {
      type: 'run-start';
      runId: string;
      runDir: string;
      mode: 'run' | 'plan' | 'rollback';
      runbook: string;
      steps: { id: string; kind: string; name?: string }[];
      budgetMs?: number;
      resumed: boolean;
    }
  | {
      type: 'step';
      stepId: string;
      state: StepState;
      attempt?: number;
      durationMs?: number;
      error?: ErrorInfo;
      note?: string;
    }
  | { type: 'log'; stepId?: string; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'plan'; stepId: string; lines: string[] }
  | { type: 'progress'; stepId: string; label: string; deadline?: number; current?: number; total?: number }
  | {
      type: 'maintenance';
      state: 'entered' | 'tick' | 'exited' | 'over-budget';
      elapsedMs: number;
      budgetMs?: number;
    }
  | { type: 'point-of-no-return'; stepId: string }
  | { type: 'rollback-start'; reason: string; steps: string[] }
  | {
      type: 'run-end';
      status: RunStatus;
      exitCode: number;
      durationMs: number;
      message: string;
      leftovers: Leftover[];
      maintenanceMs?: number;
    };

export type Emit = (e: EngineEvent) => void;

/** Moments users can hook scripts and notifications onto (hooks are named cutover-on-<event>). */
export type LifecycleEvent =
  | 'start'
  | 'before-step'
  | 'after-step'
  | 'point-of-no-return'
  | 'failure'
  | 'rollback'
  | 'success';

export interface LifecycleInfo {
  runId: string;
  runDir: string;
  dryRun: boolean;
  stepId?: string;
  kind?: string;
  status?: string;
  error?: ErrorInfo;
}

/** Awaited by the engine; throwing from before-step / after-step fails the step (as gh-ost hooks do). */
export type Lifecycle = (event: LifecycleEvent, info: LifecycleInfo) => Promise<void>;
