// The engine's shared core: options, adapters, the run's state as the fold of its journal (every
// change is `journal(type, data)`: append, then reduce), step contexts, timeouts, the maintenance
// budget and the end of a run. step.ts (one step's lifecycle), rollback.ts (undo) and executor.ts
// (the forward run) build on it, each a layer of one class so the lifecycle code reads as before.
import {
  Adapters,
  type AdapterEnv,
  type AwsSettings,
  newStats,
  type PlannedChange,
} from '../adapters/adapters.js';
import { parseDuration } from '../duration.js';
import { AbortedError, errorCode, errorMessage, formatMs, StepError, StepTimeoutError } from '../errors.js';
import { type Journal, readJournal } from '../journal/journal.js';
import type { EntryData, ErrorRecord, RecordType, TypedRecord } from '../journal/records.js';
import type { Redactor } from '../journal/redact.js';
import { type RunState, reconstruct, reduce } from '../journal/state.js';
import type { Step } from '../runbook/schema.js';
import { parseParams } from '../runbook/coerce.js';
import { quotingFor, render, type Scope, shellQuote, TemplateError } from '../runbook/template.js';
import type { PreparedRunbook } from '../runbook/validate.js';
import { getKind } from '../steps/registry.js';
import { sleep } from '../util/sleep.js';
import { BudgetClock } from './budget.js';
import type { Emit, ErrorInfo, Leftover, Lifecycle, LifecycleEvent, RunStatus, StepState } from './events.js';
import type { Progress, StepContext, StepKind } from './types.js';
import { type UndoItem, undoList } from './undo.js';
import { FaultInjector, parseFault } from './fault.js';
import { pollUntil } from './waits.js';

export interface EngineOptions {
  prepared: PreparedRunbook;
  runId: string;
  runDir: string;
  mode: 'run' | 'plan';
  journal: Journal;
  redactor: Redactor;
  aws?: AwsSettings;
  emit: Emit;
  /** Operator interrupt (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Passes approval gates without asking (--yes). */
  yes?: boolean;
  /** Asks the operator at a gate; absent when there is no terminal to ask on. */
  approve?: (step: { id: string; kind: string; name?: string }) => Promise<boolean>;
  /** Asks before rolling back after an interrupt; absent = roll back without asking. */
  confirmRollback?: (reason: string) => Promise<boolean>;
  lifecycle?: Lifecycle;
  /** Continue a run from its journal (cutover resume). Its presence says "resume"; the engine reads the journal itself. */
  resume?: RunState;
  /** Default per-step timeout when neither the step nor the runbook defaults set one. */
  defaultTimeoutMs?: number;
}

export interface RunResult {
  status: RunStatus;
  exitCode: number;
  message: string;
  leftovers: Leftover[];
  durationMs: number;
  maintenanceMs?: number;
  stats: ReturnType<typeof newStats>;
  /** Per-step wall time and the part of it spent inside kind code, for overhead measurements. */
  timings: { stepId: string; totalMs: number; actionMs: number }[];
  planFailures: number;
}

export class StepFailure extends Error {
  constructor(
    readonly stepId: string,
    readonly info: ErrorInfo,
    readonly original: unknown,
  ) {
    super(info.message);
  }
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export abstract class EngineCore {
  protected readonly adapters: Adapters;
  protected readonly stats = newStats();
  /** Template scope (${steps.x.outputs.y}): unredacted values for rendering, not run state. */
  protected readonly scope: Scope;
  protected readonly runAbort = new AbortController();
  protected readonly started = performance.now();
  /** The run's state: only ever the fold of the journal records written or read (journal/state.ts). */
  protected state: RunState | undefined;
  protected readonly clock: BudgetClock;
  /** The step in progress and the writes it recorded (dry run): per-step scratch, reset each step. */
  protected currentStep: string | undefined;
  protected currentPlan: PlannedChange[] = [];
  protected readonly timings: RunResult['timings'] = [];
  private readonly fault: FaultInjector | undefined;

  constructor(protected readonly o: EngineOptions) {
    const prepared = o.prepared;
    const point = o.mode === 'run' ? parseFault(process.env.CUTOVER_TEST_FAULT) : undefined;
    this.fault = point && new FaultInjector(point);
    const env: AdapterEnv = {
      mode: o.mode === 'plan' ? 'dry' : 'live',
      env: prepared.env,
      cwd: process.cwd(),
      aws: {
        endpoint: o.aws?.endpoint ?? prepared.runbook.aws?.endpoint ?? prepared.env.CUTOVER_AWS_ENDPOINT,
        region: o.aws?.region ?? prepared.runbook.aws?.region,
        profile: o.aws?.profile ?? prepared.runbook.aws?.profile,
      },
      stats: this.stats,
      database: (name) => {
        const db = prepared.databases[name];
        if (!db) throw new StepError('UNKNOWN_DATABASE', `unknown database "${name}"`);
        return db;
      },
      record: (c) => this.currentPlan.push(c),
      countRead: (op) => {
        this.fault?.onCall('read');
        this.stats.reads[op] = (this.stats.reads[op] ?? 0) + 1;
      },
      countWrite: (op) => {
        this.fault?.onCall('write');
        this.stats.writes[op] = (this.stats.writes[op] ?? 0) + 1;
      },
    };
    this.adapters = new Adapters(env);
    this.scope = { params: prepared.params, env: prepared.env, steps: {} };
    const budgetMs = prepared.budgetMs;
    this.clock = new BudgetClock(
      budgetMs,
      (elapsedMs) =>
        this.o.emit({
          type: 'maintenance',
          state: 'tick',
          elapsedMs,
          ...(budgetMs !== undefined ? { budgetMs } : {}),
        }),
      (elapsedMs) => {
        if (this.runAbort.signal.aborted || budgetMs === undefined) return;
        this.o.emit({ type: 'maintenance', state: 'over-budget', elapsedMs, budgetMs });
        this.runAbort.abort(
          new StepError(
            'MAINTENANCE_BUDGET_EXCEEDED',
            `maintenance budget of ${formatMs(budgetMs)} exceeded`,
          ),
        );
      },
    );
    if (o.signal) {
      const onAbort = () => this.runAbort.abort(new AbortedError('interrupted by the operator'));
      if (o.signal.aborted) onAbort();
      else o.signal.addEventListener('abort', onAbort, { once: true });
    }
  }

  protected get steps(): Step[] {
    return this.o.prepared.runbook.steps;
  }

  protected emitStep(
    stepId: string,
    state: StepState,
    extra: { attempt?: number; durationMs?: number; error?: ErrorInfo; note?: string } = {},
  ) {
    this.fault?.onStep(stepId, state);
    this.o.emit(this.o.redactor.value({ type: 'step', stepId, state, ...extra }));
  }

  protected log(level: 'info' | 'warn' | 'error', message: string, stepId = this.currentStep) {
    this.o.emit({
      type: 'log',
      level,
      message: this.o.redactor.text(message),
      ...(stepId ? { stepId } : {}),
    });
  }

  /** Every state change: write the record, then fold it into the state (the same reduce resume uses). */
  protected journal<T extends RecordType>(type: T, data: EntryData<T>) {
    const prev = this.run;
    const rec = this.o.journal.append(type, data);
    this.state = reduce(prev, rec as unknown as TypedRecord);
    return rec;
  }

  /** A fact from around the engine (the session's terminal handling): journaled and folded like its own. */
  note(type: 'output-redirected', data: EntryData<'output-redirected'>): void {
    this.journal(type, data);
  }

  protected get run(): RunState {
    // The session journals run-start before the engine starts; the engine reads the journal once.
    this.state ??= reconstruct(readJournal(this.o.runDir));
    return this.state;
  }

  protected get pnrStep(): string | undefined {
    return this.run.pointOfNoReturn;
  }

  /** A non-read-only step has started applying: there is something to undo or leave in place. */
  protected get changesMade(): boolean {
    return [...this.run.steps.values()].some((s) => s.applyStarted && !getKind(s.kind)?.readOnly);
  }

  protected get plannedWrites(): number {
    return this.run.plannedWrites;
  }

  protected undoList(): UndoItem[] {
    return undoList(this.run, this.steps, getKind);
  }

  protected stepOf(id: string): Step {
    return this.steps.find((s) => s.id === id)!;
  }

  protected async lifecycle(
    event: LifecycleEvent,
    info: { stepId?: string; kind?: string; status?: string; error?: ErrorInfo } = {},
    mayFail = false,
  ) {
    if (!this.o.lifecycle) return;
    try {
      await this.o.lifecycle(event, {
        runId: this.o.runId,
        runDir: this.o.runDir,
        dryRun: this.o.mode === 'plan',
        ...info,
      });
    } catch (e) {
      if (mayFail) throw e;
      this.log('warn', `${event} hook/notification failed: ${errorMessage(e)}`);
    }
  }

  // ---------------------------------------------------------------- step plumbing

  protected resolveParams(
    step: Step | { id: string; kind: string; with?: Record<string, unknown> },
    kind: StepKind,
    raw = step.with ?? {},
  ): unknown {
    let rendered: unknown;
    const secretEnv: Record<string, string> = {};
    try {
      rendered = render(raw, this.scope, this.shellSecretQuoting(kind, secretEnv));
      if (Object.keys(secretEnv).length && rendered && typeof rendered === 'object') {
        const r = rendered as { env?: Record<string, string> };
        r.env = { ...r.env, ...secretEnv };
      }
    } catch (e) {
      if (e instanceof TemplateError)
        throw new StepError('TEMPLATE_UNRESOLVED', `step "${step.id}": ${e.message}`);
      throw e;
    }
    const parsed = parseParams(kind.params, rendered);
    if (!parsed.success) {
      const first = parsed.error.issues[0]!;
      throw new StepError('BAD_PARAMS', `step "${step.id}": with.${first.path.join('.')}: ${first.message}`);
    }
    return parsed.data;
  }

  /**
   * shell.run: a secret templated into a command goes in by the environment (`"$CUTOVER_SECRET_1"`,
   * still one shell word), not on `bash -c`'s argv, which every local user can read in /proc.
   */
  private shellSecretQuoting(kind: StepKind, secretEnv: Record<string, string>) {
    const q = quotingFor(kind);
    const secrets = this.o.prepared.secrets;
    if (kind.kind !== 'shell.run' || !secrets.length) return q;
    const viaEnv = (s: string): string => {
      if (!secrets.some((x) => s.includes(x))) return shellQuote(s);
      let name = Object.keys(secretEnv).find((k) => secretEnv[k] === s);
      if (!name) {
        name = `CUTOVER_SECRET_${Object.keys(secretEnv).length + 1}`;
        secretEnv[name] = s;
      }
      return `"$${name}"`;
    };
    return Object.fromEntries(Object.keys(q).map((k) => [k, viaEnv]));
  }

  protected context(stepId: string, signal: AbortSignal): StepContext {
    const emit = this.o.emit;
    const redactor = this.o.redactor;
    const pause = (ms: number) => sleep(ms, signal);
    const progress = (p: Progress) => emit(redactor.value({ type: 'progress', stepId, ...p }));
    return {
      runId: this.o.runId,
      runDir: this.o.runDir,
      stepId,
      dryRun: this.o.mode === 'plan',
      signal,
      adapters: this.adapters,
      ...(this.o.prepared.budgetMs !== undefined ? { budgetMs: this.o.prepared.budgetMs } : {}),
      database: (name) => this.adapters.env.database(name),
      redact: (v) => redactor.value(v),
      log: (message) => this.log('info', message, stepId),
      warn: (message) => {
        this.log('warn', message, stepId);
        this.journal('warning', { stepId, message });
      },
      progress,
      sleep: pause,
      poll: (opts) => pollUntil(opts, signal, pause, progress),
    };
  }

  /** Runs fn under a timeout and the run's abort signal; the kind gets a signal it should honour. */
  protected async guarded<T>(
    what: string,
    timeoutMs: number,
    fn: (signal: AbortSignal) => Promise<T>,
    linkRun = true,
  ): Promise<T> {
    const ctrl = new AbortController();
    const onRunAbort = () => ctrl.abort(this.runAbort.signal.reason);
    if (linkRun) {
      if (this.runAbort.signal.aborted) throw this.runAbort.signal.reason;
      this.runAbort.signal.addEventListener('abort', onRunAbort, { once: true });
    }
    const timer = setTimeout(() => ctrl.abort(new StepTimeoutError(what, timeoutMs)), timeoutMs);
    try {
      return await new Promise<T>((resolve, reject) => {
        ctrl.signal.addEventListener('abort', () => reject(ctrl.signal.reason), { once: true });
        fn(ctrl.signal).then(resolve, reject);
      });
    } finally {
      clearTimeout(timer);
      this.runAbort.signal.removeEventListener('abort', onRunAbort);
    }
  }

  protected stepTimeout(step: Step): number {
    const d = step.timeout ?? this.o.prepared.runbook.defaults?.timeout;
    return d !== undefined ? parseDuration(d)! : (this.o.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  // ---------------------------------------------------------------- maintenance budget

  /**
   * Journals maintenance switching on or off (by a step, or by an undo) and runs the budget clock
   * for the forward run. No-op when the journal already says so, so an undo never double-records.
   */
  protected maintenanceSwitched(to: 'entered' | 'exited', via?: 'undo') {
    const m = this.run.maintenance;
    const budgetMs = this.o.prepared.budgetMs;
    const budget = budgetMs !== undefined ? { budgetMs } : {};
    if (to === 'entered') {
      if (m.on) return;
      this.journal('maintenance', { state: 'entered', budgetMs, ...(via ? { via } : {}) });
      this.o.emit({ type: 'maintenance', state: 'entered', elapsedMs: 0, ...budget });
      if (!via) this.clock.start(Date.parse(this.run.maintenance.onSince!));
      return;
    }
    this.clock.stop();
    if (!m.on) return;
    const elapsedMs = Date.now() - Date.parse(m.onSince!);
    this.journal('maintenance', { state: 'exited', elapsedMs, budgetMs, ...(via ? { via } : {}) });
    this.o.emit({ type: 'maintenance', state: 'exited', elapsedMs, ...budget });
  }

  /** A resumed run inside its window: time already spent (the dead process's too) counts. */
  protected resumeMaintenanceClock() {
    const since = Date.parse(this.run.maintenance.onSince!);
    const budgetMs = this.o.prepared.budgetMs;
    this.log(
      'info',
      `maintenance has been on since ${this.run.maintenance.onSince} (${formatMs(Date.now() - since)}${budgetMs !== undefined ? ` of the ${formatMs(budgetMs)} budget` : ''})`,
      undefined,
    );
    // Renderers learn the window is open, and how long it has been (not journaled: it is not new).
    this.o.emit({
      type: 'maintenance',
      state: 'entered',
      elapsedMs: Date.now() - since,
      ...(budgetMs !== undefined ? { budgetMs } : {}),
    });
    this.clock.start(since);
  }

  /** Time in maintenance as the journal tells it: up to now while on, else the last window. */
  protected maintenanceMs(): number | undefined {
    const m = this.run.maintenance;
    if (m.on) return Date.now() - Date.parse(m.onSince!);
    return m.elapsedMs;
  }

  protected async finish(
    status: RunStatus,
    exitCode: number,
    message: string,
    leftovers: Leftover[],
  ): Promise<RunResult> {
    this.clock.stop();
    const durationMs = performance.now() - this.started;
    const msg = this.o.redactor.text(message);
    const maintenanceMs = this.maintenanceMs();
    const mMs = maintenanceMs !== undefined ? { maintenanceMs } : {};
    this.journal('run-end', {
      status,
      exitCode,
      message: msg,
      durationMs: Math.round(durationMs),
      leftovers,
      ...(maintenanceMs !== undefined ? { maintenanceMs: Math.round(maintenanceMs) } : {}),
      adapterStats: this.stats,
    });
    await this.adapters.closeAll();
    const result: RunResult = {
      status,
      exitCode,
      message: msg,
      leftovers,
      durationMs,
      stats: this.stats,
      timings: this.timings,
      planFailures: this.run.planFailures,
      ...mMs,
    };
    this.o.emit(
      this.o.redactor.value({
        type: 'run-end',
        status,
        exitCode,
        durationMs,
        message: msg,
        leftovers,
        ...mMs,
      }),
    );
    return result;
  }
}

/** The journal's form of an error, StepError.details included (the journal redacts it). */
export function errorRecord(e: unknown): ErrorRecord {
  const details = e instanceof StepError ? e.details : undefined;
  let safe: Record<string, unknown> | undefined;
  try {
    // Evidence must not break the record: bigints become strings, cycles drop the details.
    safe = details && JSON.parse(JSON.stringify(details, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
  } catch {
    safe = undefined;
  }
  return { code: errorCode(e), message: errorMessage(e), ...(safe ? { details: safe } : {}) };
}
