// Every error the tool raises on purpose carries a stable code and the exit code the CLI should use,
// so main() never has to guess and never prints a stack trace for an expected failure.

export const ExitCode = {
  ok: 0,
  failedRolledBack: 1,
  badInput: 2,
  manualActionNeeded: 3,
  locked: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CutoverError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  constructor(code: string, message: string, opts: { exitCode?: ExitCodeValue; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = opts.exitCode ?? ExitCode.failedRolledBack;
  }
}

/** Bad input: a malformed runbook, unknown kind, missing parameter, bad flag. Nothing has changed. */
export class InputError extends CutoverError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { exitCode: ExitCode.badInput, cause });
  }
}

export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export interface ValidationIssue {
  pos: SourcePos;
  message: string;
  severity: 'error' | 'warning';
}

export function formatIssue(i: ValidationIssue): string {
  return `${i.pos.file}:${i.pos.line}:${i.pos.col} ${i.severity === 'warning' ? 'warning: ' : ''}${i.message}`;
}

export class RunbookError extends InputError {
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    const errors = issues.filter((i) => i.severity === 'error');
    super('RUNBOOK_INVALID', errors.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

/** A step failed; the engine decides what that means for the run. */
export class StepError extends CutoverError {
  readonly details: Record<string, unknown> | undefined;
  constructor(code: string, message: string, details?: Record<string, unknown>, cause?: unknown) {
    super(code, message, { cause });
    this.details = details;
  }
}

export class StepTimeoutError extends StepError {
  constructor(what: string, ms: number) {
    super('STEP_TIMEOUT', `${what} did not finish within ${formatMs(ms)}`);
  }
}

export class AbortedError extends StepError {
  constructor(reason: string) {
    super('ABORTED', reason);
  }
}

export class LockedError extends CutoverError {
  constructor(message: string) {
    super('LOCKED', message, { exitCode: ExitCode.locked });
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export function errorCode(e: unknown): string {
  if (e instanceof CutoverError) return e.code;
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string')
    return (e as { code: string }).code;
  if (e instanceof Error && e.name && e.name !== 'Error') return e.name;
  return 'ERROR';
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  // Round to whole seconds first, so 119.6s reads 2m, not 1m60s.
  const total = Math.round(ms / 1000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return s ? `${m}m${s}s` : `${m}m`;
}
