// The runbook executor. Reads like the runbook it runs: for each step, gate → before checks →
// snapshot (journaled) → apply → verify → after checks; on failure, undo in reverse from snapshots.
import {
  Adapters,
  type AdapterEnv,
  type AwsSettings,
  newStats,
  renderChange,
  type PlannedChange,
} from '../adapters/adapters.js';
import { parseDuration } from '../duration.js';
import {
  AbortedError,
  CutoverError,
  errorCode,
  errorMessage,
  ExitCode,
  formatMs,
  StepError,
  StepTimeoutError,
} from '../errors.js';
import { type Journal, readJournal } from '../journal/journal.js';
import type { EntryData, ErrorRecord, RecordType, TypedRecord } from '../journal/records.js';
import type { Redactor } from '../journal/redact.js';
import { type RunState, reconstruct, reduce } from '../journal/state.js';
import type { Check, Step } from '../runbook/schema.js';
import { parseParams } from '../runbook/coerce.js';
import { quotingFor, render, type Scope, TemplateError } from '../runbook/template.js';
import type { PreparedRunbook } from '../runbook/validate.js';
import { getKind } from '../steps/registry.js';
import { sleep } from '../util/sleep.js';
import { BudgetClock } from './budget.js';
import type { Emit, ErrorInfo, Leftover, Lifecycle, LifecycleEvent, RunStatus, StepState } from './events.js';
import type { Progress, StepContext, StepKind } from './types.js';
import { type UndoItem, undoList } from './undo.js';
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
  /** Continue a run from its journal (cutover resume). */
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

class StepFailure extends Error {
  constructor(
    readonly stepId: string,
    readonly info: ErrorInfo,
    readonly original: unknown,
  ) {
    super(info.message);
  }
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export class Engine {
  private readonly adapters: Adapters;
  private readonly stats = newStats();
  /** Template scope (${steps.x.outputs.y}): unredacted values for rendering, not run state. */
  private readonly scope: Scope;
  private readonly runAbort = new AbortController();
  private readonly started = performance.now();
  /** The run's state: only ever the fold of the journal records written or read (journal/state.ts). */
  private state: RunState | undefined;
  private readonly clock: BudgetClock;
  /** The step in progress and the writes it recorded (dry run): per-step scratch, reset each step. */
  private currentStep: string | undefined;
  private currentPlan: PlannedChange[] = [];
  private readonly timings: RunResult['timings'] = [];

  constructor(private readonly o: EngineOptions) {
    const prepared = o.prepared;
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
        this.stats.reads[op] = (this.stats.reads[op] ?? 0) + 1;
      },
      countWrite: (op) => {
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

  private get steps(): Step[] {
    return this.o.prepared.runbook.steps;
  }

  private emitStep(
    stepId: string,
    state: StepState,
    extra: { attempt?: number; durationMs?: number; error?: ErrorInfo; note?: string } = {},
  ) {
    this.o.emit(this.o.redactor.value({ type: 'step', stepId, state, ...extra }));
  }

  private log(level: 'info' | 'warn' | 'error', message: string, stepId = this.currentStep) {
    this.o.emit({
      type: 'log',
      level,
      message: this.o.redactor.text(message),
      ...(stepId ? { stepId } : {}),
    });
  }

  /** Every state change: write the record, then fold it into the state (the same reduce resume uses). */
  private journal<T extends RecordType>(type: T, data: EntryData<T>) {
    const rec = this.o.journal.append(type, data);
    this.state = reduce(this.state, rec as unknown as TypedRecord);
    return rec;
  }

  private get run(): RunState {
    // The session journals run-start before the engine starts; the engine reads the journal once.
    this.state ??= reconstruct(readJournal(this.o.runDir));
    return this.state;
  }

  private get pnrStep(): string | undefined {
    return this.run.pointOfNoReturn;
  }

  /** A non-read-only step has started applying: there is something to undo or leave in place. */
  private get changesMade(): boolean {
    return [...this.run.steps.values()].some((s) => s.applyStarted && !getKind(s.kind)?.readOnly);
  }

  private get plannedWrites(): number {
    return this.run.plannedWrites;
  }

  private undoList(): UndoItem[] {
    return undoList(this.run, this.steps, getKind);
  }

  private stepOf(id: string): Step {
    return this.steps.find((s) => s.id === id)!;
  }

  private async lifecycle(
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

  // ---------------------------------------------------------------- the run

  async execute(): Promise<RunResult> {
    const { prepared, resume } = this.o;
    this.o.emit({
      type: 'run-start',
      runId: this.o.runId,
      runDir: this.o.runDir,
      mode: this.o.mode,
      runbook: prepared.loaded.file,
      steps: this.steps.map((s) => ({ id: s.id, kind: s.kind, ...(s.name ? { name: s.name } : {}) })),
      ...(prepared.budgetMs !== undefined ? { budgetMs: prepared.budgetMs } : {}),
      resumed: !!resume,
    });
    void this.run; // read the journal before the first record of this process
    if (resume) this.journal('run-resume', {});
    await this.preload();
    await this.lifecycle('start');
    for (const w of prepared.warnings)
      this.log('warn', `${w.pos.file}:${w.pos.line}:${w.pos.col} ${w.message}`);

    try {
      for (const step of this.steps) {
        const prior = resume?.steps.get(step.id);
        if (prior?.status === 'done') {
          this.scope.steps[step.id] = { outputs: prior.outputs ?? {} };
          this.emitStep(step.id, 'done', { note: 'done in an earlier attempt' });
          continue;
        }
        // Resumed inside the maintenance window: the clock goes on from when the journal says it began.
        if (this.run.maintenance.on && !this.clock.running) this.resumeMaintenanceClock();
        this.throwIfAborted();
        if (step.approval && this.o.mode === 'run') {
          const gate = await this.gate(step);
          if (gate) return gate;
        }
        await this.runStep(
          step,
          prior?.status === 'in-flight' && prior.applyStarted ? { snapshot: prior.snapshot } : undefined,
        );
      }
    } catch (e) {
      return this.onFailure(e);
    } finally {
      this.clock.stop();
    }
    if (this.o.mode === 'plan') {
      const planFailures = this.run.planFailures;
      const failed = planFailures > 0;
      return this.finish(
        failed ? 'plan-failed' : 'planned',
        failed ? ExitCode.failedRolledBack : ExitCode.ok,
        failed
          ? `plan found ${planFailures} failing check(s); nothing was changed`
          : 'plan complete; nothing was changed',
        [],
      );
    }
    await this.lifecycle('success', { status: 'succeeded' });
    return this.finish('succeeded', ExitCode.ok, 'cutover complete', []);
  }

  /** Module loading costs hundreds of ms: pay it before the first step, outside any maintenance window. */
  private async preload(): Promise<void> {
    const used = new Set(this.steps.map((s) => getKind(s.kind)!));
    await Promise.all([...used].map((k) => k.preload?.().catch(() => undefined)));
  }

  private throwIfAborted() {
    if (this.runAbort.signal.aborted) throw this.runAbort.signal.reason;
  }

  private async gate(step: Step): Promise<RunResult | undefined> {
    const who = { id: step.id, kind: step.kind, ...(step.name ? { name: step.name } : {}) };
    if (this.o.yes) {
      this.journal('gate', { stepId: step.id, decision: 'approved', via: '--yes' });
      return undefined;
    }
    if (!this.o.approve) {
      this.journal('gate', { stepId: step.id, decision: 'needs-approval' });
      this.emitStep(step.id, 'awaiting-approval');
      const msg = `step "${step.id}" needs approval and there is no terminal to ask on; nothing more was changed. Continue with \`cutover resume ${this.o.runDir} --yes\`${this.changesMade ? ` or undo with \`cutover rollback ${this.o.runDir}\`` : ''}`;
      return this.finish(
        'paused',
        this.changesMade ? ExitCode.manualActionNeeded : ExitCode.badInput,
        msg,
        this.changesMade ? this.pendingLeftovers('left in place at the approval gate') : [],
      );
    }
    this.emitStep(step.id, 'awaiting-approval');
    const ok = await this.o.approve(who);
    this.journal('gate', { stepId: step.id, decision: ok ? 'approved' : 'declined', via: 'prompt' });
    if (!ok) throw new AbortedError(`operator declined step "${step.id}" at its approval gate`);
    return undefined;
  }

  // ---------------------------------------------------------------- one step

  private resolveParams(
    step: Step | { id: string; kind: string; with?: Record<string, unknown> },
    kind: StepKind,
    raw = step.with ?? {},
  ): unknown {
    let rendered: unknown;
    try {
      rendered = render(raw, this.scope, quotingFor(kind));
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

  private context(stepId: string, signal: AbortSignal): StepContext {
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
  private async guarded<T>(
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

  private stepTimeout(step: Step): number {
    const d = step.timeout ?? this.o.prepared.runbook.defaults?.timeout;
    return d !== undefined ? parseDuration(d)! : (this.o.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  private async runStep(step: Step, inFlight?: { snapshot: unknown }): Promise<void> {
    const kind = getKind(step.kind)!;
    const t0 = performance.now();
    let actionMs = 0;
    const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
      const a = performance.now();
      try {
        return await fn();
      } finally {
        actionMs += performance.now() - a;
      }
    };
    this.currentStep = step.id;
    this.currentPlan = [];
    const writesBefore = this.plannedWrites;
    this.emitStep(step.id, 'checking');
    let params: unknown;
    let snapshot: unknown = inFlight?.snapshot;
    // apply returned: the change was made even if verify or an after check then fails.
    let applied = false;
    const timeoutMs = this.stepTimeout(step);
    let result: { outputs: Record<string, unknown>; state: StepState };
    try {
      params = this.resolveParams(step, kind);
      this.journal('step-start', {
        stepId: step.id,
        kind: step.kind,
        inputs: params,
        ...(inFlight ? { resumed: true } : {}),
      });
      await this.lifecycle('before-step', { stepId: step.id, kind: step.kind }, true);

      result = await this.guarded(`step "${step.id}"`, timeoutMs, async (signal) => {
        const ctx = this.context(step.id, signal);
        for (const check of step.before ?? []) await this.runCheck(step, check, 'before', signal);

        if (inFlight) {
          // The process died mid-apply: find out whether the change happened before redoing it.
          const applied = await timed(() => this.isApplied(kind, ctx, params, snapshot));
          this.log(
            'info',
            applied
              ? 'interrupted step had completed; verified, not re-applied'
              : 'interrupted step had not completed; applying it again',
          );
          if (applied) {
            this.journal('step-reconciled', { stepId: step.id, applied: true });
            return finish({});
          }
        } else {
          snapshot = kind.snapshot ? await timed(() => kind.snapshot!(ctx, params)) : null;
          // Journaled (fsync'd) before apply: rollback works from the journal alone after a crash.
          this.journal('snapshot', { stepId: step.id, snapshot });
        }

        if (this.o.mode === 'plan') {
          this.emitStep(step.id, 'running');
          let outputs: Record<string, unknown> = {};
          let failure: unknown;
          try {
            outputs =
              ((await timed(() => kind.apply(ctx, params, snapshot))) as Record<string, unknown>) ?? {};
          } catch (e) {
            failure = e;
          }
          // Recorded writes are the exact plan; describe() adds notes, or stands in when apply could not record.
          const described = kind.describe(params, snapshot ?? undefined);
          const recorded = this.currentPlan.map(renderChange);
          const unique = [
            ...new Set(
              recorded.length
                ? [...recorded, ...described.filter((l) => !/^\s*(undo )?would /.test(l))]
                : described,
            ),
          ];
          this.o.emit(this.o.redactor.value({ type: 'plan', stepId: step.id, lines: unique }));
          this.journal('plan', { stepId: step.id, lines: unique, recorded: this.currentPlan });
          if (failure) throw failure;
          return finish(outputs, 'planned');
        }

        const retries = step.retries ?? this.o.prepared.runbook.defaults?.retries ?? 0;
        const baseDelay = parseDuration(
          step.retryDelay ?? this.o.prepared.runbook.defaults?.retryDelay ?? '1s',
        )!;
        for (let attempt = 1; ; attempt++) {
          try {
            this.emitStep(step.id, 'running', { attempt });
            const outputs =
              ((await timed(() => kind.apply(ctx, params, snapshot))) as Record<string, unknown>) ?? {};
            applied = true;
            if (kind.maintenance === 'enter') this.maintenanceSwitched('entered');
            this.emitStep(step.id, 'verifying', { attempt });
            if (kind.verify) await timed(() => kind.verify!(ctx, params, snapshot, outputs));
            this.scope.steps[step.id] = { outputs };
            for (const check of step.after ?? []) await this.runCheck(step, check, 'after', signal);
            return finish(outputs);
          } catch (e) {
            // Never retry after an abort (operator, budget, timeout): the run is ending.
            if (signal.aborted || attempt > retries) throw e;
            const delay = Math.min(baseDelay * 2 ** (attempt - 1), 60_000);
            this.journal('step-retry', {
              stepId: step.id,
              attempt,
              delayMs: delay,
              error: errorRecord(e),
            });
            this.emitStep(step.id, 'retrying', {
              attempt,
              error: { code: errorCode(e), message: errorMessage(e) },
            });
            await ctx.sleep(delay);
          }
        }
      });

      function finish(this: void, outputs: Record<string, unknown>, state: StepState = 'done') {
        return { outputs, state };
      }
    } catch (e) {
      const info = { code: errorCode(e), message: errorMessage(e) };
      const durationMs = performance.now() - t0;
      if (this.o.mode === 'plan' && !(e instanceof AbortedError)) {
        // A plan reports every failing check and carries on: the operator wants the whole picture.
        // Once earlier steps have recorded writes, later checks read a world those writes have not
        // changed yet (a smoke test after the flip): report what they see now, without failing.
        this.scope.steps[step.id] = { outputs: {} };
        if (writesBefore > 0) {
          this.journal('plan-check-deferred', { stepId: step.id, error: info, durationMs });
          this.log(
            'warn',
            `cannot be judged before the earlier changes are made; today it says: ${info.message}`,
            step.id,
          );
          this.emitStep(step.id, 'planned', { durationMs, note: 'check deferred to the real run' });
          this.currentStep = undefined;
          return;
        }
        this.journal('step-failed', { stepId: step.id, error: errorRecord(e), durationMs });
        this.emitStep(step.id, 'failed', { error: info, durationMs });
        this.scope.steps[step.id] = { outputs: {} };
        this.currentStep = undefined;
        return;
      }
      // Whether this step is undone is decided from this record (undo.ts), as `cutover rollback` would.
      this.journal('step-failed', {
        stepId: step.id,
        error: errorRecord(e),
        durationMs,
        ...(applied ? { applied: true } : {}),
      });
      this.emitStep(step.id, 'failed', { error: info, durationMs });
      await this.lifecycle('failure', { stepId: step.id, kind: step.kind, error: info });
      throw new StepFailure(step.id, info, e);
    }

    const outputs = result.outputs;
    this.scope.steps[step.id] = { outputs };
    const totalMs = performance.now() - t0;
    this.timings.push({ stepId: step.id, totalMs, actionMs });
    if (result.state === 'planned') {
      this.emitStep(step.id, 'planned', { durationMs: totalMs });
      this.currentStep = undefined;
      return;
    }
    this.journal('step-done', {
      stepId: step.id,
      outputs,
      durationMs: Math.round(totalMs * 1000) / 1000,
      actionMs: Math.round(actionMs * 1000) / 1000,
    });
    if (kind.maintenance === 'exit') this.maintenanceSwitched('exited');
    this.emitStep(step.id, 'done', { durationMs: totalMs });
    await this.lifecycle('after-step', { stepId: step.id, kind: step.kind }, true).catch(async (e) => {
      // The change is made and journaled: fail the run so it is undone with the rest.
      throw new StepFailure(step.id, { code: 'HOOK_FAILED', message: errorMessage(e) }, e);
    });
    if (step.pointOfNoReturn) {
      this.journal('point-of-no-return', { stepId: step.id });
      this.o.emit({ type: 'point-of-no-return', stepId: step.id });
      await this.lifecycle('point-of-no-return', { stepId: step.id });
    }
    this.currentStep = undefined;
  }

  private async isApplied(
    kind: StepKind,
    ctx: StepContext,
    params: unknown,
    snapshot: unknown,
  ): Promise<boolean> {
    if (kind.isApplied) return kind.isApplied(ctx, params, snapshot);
    if (!kind.verify) return false;
    try {
      await kind.verify(ctx, params, snapshot, {});
      return true;
    } catch {
      return false;
    }
  }

  private async runCheck(
    step: Step,
    check: Check,
    phase: 'before' | 'after',
    signal: AbortSignal,
  ): Promise<void> {
    const kind = getKind(check.kind)!;
    const label = check.name ?? check.kind;
    const params = this.resolveParams(
      { id: `${step.id} ${phase} check`, kind: check.kind, with: check.with },
      kind,
      check.with ?? {},
    );
    const ctx = this.context(step.id, signal);
    const once = async () => {
      await kind.apply(ctx, params, undefined);
    };
    const until = check['wait-until'];
    try {
      if (!until || this.o.mode === 'plan') await once();
      else {
        await ctx.poll({
          what: `${phase} check ${label}`,
          timeoutMs: parseDuration(until.timeout)!,
          intervalMs: until.interval !== undefined ? parseDuration(until.interval)! : 1000,
          check: async () => {
            try {
              await once();
              return { done: true };
            } catch (e) {
              if (signal.aborted) throw e;
              return { done: false, status: errorMessage(e) };
            }
          },
        });
      }
      this.journal('check', { stepId: step.id, phase, check: label, ok: true });
    } catch (e) {
      this.journal('check', { stepId: step.id, phase, check: label, ok: false, error: errorRecord(e) });
      if (e instanceof CutoverError && (e.code === 'ABORTED' || e.code === 'STEP_TIMEOUT')) throw e;
      throw new StepError(
        e instanceof CutoverError ? e.code : 'CHECK_FAILED',
        `${phase} check ${label} failed: ${errorMessage(e)}`,
      );
    }
  }

  // ---------------------------------------------------------------- maintenance budget

  /**
   * Journals maintenance switching on or off (by a step, or by an undo) and runs the budget clock
   * for the forward run. No-op when the journal already says so, so an undo never double-records.
   */
  private maintenanceSwitched(to: 'entered' | 'exited', via?: 'undo') {
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
  private resumeMaintenanceClock() {
    const since = Date.parse(this.run.maintenance.onSince!);
    const budgetMs = this.o.prepared.budgetMs;
    this.log(
      'info',
      `maintenance has been on since ${this.run.maintenance.onSince} (${formatMs(Date.now() - since)}${budgetMs !== undefined ? ` of the ${formatMs(budgetMs)} budget` : ''})`,
      undefined,
    );
    this.clock.start(since);
  }

  /** Time in maintenance as the journal tells it: up to now while on, else the last window. */
  private maintenanceMs(): number | undefined {
    const m = this.run.maintenance;
    if (m.on) return Date.now() - Date.parse(m.onSince!);
    return m.elapsedMs;
  }

  // ---------------------------------------------------------------- failure and rollback

  private async onFailure(e: unknown): Promise<RunResult> {
    // Stop the budget from aborting the rollback, but keep the window open: undoing the step that
    // entered maintenance closes it (and journals when).
    this.clock.stop();
    const failure =
      e instanceof StepFailure
        ? e
        : new StepFailure(this.currentStep ?? '-', { code: errorCode(e), message: errorMessage(e) }, e);
    const interrupted = failure.info.code === 'ABORTED';
    // Between steps (a gate, a resumed run already over budget) there is no step to name.
    const reason =
      failure.stepId === '-'
        ? `run stopped: ${failure.info.message}`
        : `step "${failure.stepId}" failed: ${failure.info.message}`;

    if (this.o.mode === 'plan')
      return this.finish('plan-failed', ExitCode.failedRolledBack, `${reason}; nothing was changed`, []);

    if (this.pnrStep) {
      // The data has moved. A later failure (crons, a notification, a smoke check, maintenance exit)
      // does not move it back on its own unless the runbook asked for that (issue 12, C6).
      const policy = this.o.prepared.runbook.rollback?.afterPointOfNoReturn ?? 'stop';
      const net = policy === 'auto' ? await this.rollbackSafetyNet() : undefined;
      if (!net) {
        const why =
          policy === 'auto'
            ? 'no safety net (reverse replication) is healthy, so nothing was undone automatically'
            : 'the data has moved, and a later failure does not move it back on its own (runbook `rollback: { afterPointOfNoReturn: stop }`, the default): nothing was undone';
        const msg = `${reason}. Past the point of no return ("${this.pnrStep}"): ${why}. Maintenance is ${this.run.maintenance.on ? 'ON' : 'off'}. Check the state below, then undo on purpose with \`cutover rollback ${this.o.runDir}\` or finish with \`cutover resume ${this.o.runDir}\``;
        return this.finish(
          'halted',
          ExitCode.manualActionNeeded,
          msg,
          this.pendingLeftovers('left in place past the point of no return'),
        );
      }
      this.log('info', `past the point of no return, but ${net} is healthy: rolling back loses no writes`);
    }

    if (interrupted && this.o.confirmRollback) {
      const ok = await this.o.confirmRollback(reason);
      if (!ok) {
        const msg = `${reason}. Left as is at your request: undo with \`cutover rollback ${this.o.runDir}\` or continue with \`cutover resume ${this.o.runDir}\``;
        return this.finish(
          'interrupted',
          ExitCode.manualActionNeeded,
          msg,
          this.pendingLeftovers('left in place after the interrupt'),
        );
      }
    }
    return this.rollback(reason, this.undoList());
  }

  /** Which completed keepsRollbackSafe step (reverse replication) is healthy, if any. */
  private async rollbackSafetyNet(): Promise<string | undefined> {
    for (const step of this.steps) {
      const kind = getKind(step.kind)!;
      const s = this.run.steps.get(step.id);
      if (!kind.keepsRollbackSafe || !kind.isRollbackSafe || s?.status !== 'done') continue;
      try {
        const params = this.resolveParams(step, kind);
        const ok = await this.guarded(
          `${step.id} health`,
          30_000,
          (signal) => kind.isRollbackSafe!(this.context(step.id, signal), params, s.snapshot, s.outputs),
          false,
        );
        if (ok) return `${step.kind} ("${step.id}")`;
      } catch {
        // unhealthy: keep looking
      }
    }
    return undefined;
  }

  /** Everything the undo rule would undo, listed for a human (same rule as the rollback itself). */
  private pendingLeftovers(problem: string): Leftover[] {
    // In runbook order, as they were made (the undo list itself is last-first).
    return this.undoList()
      .filter((u) => u.via !== 'none')
      .reverse()
      .map((u) => this.leftover(u.stepId, problem));
  }

  private leftover(stepId: string, problem: string): Leftover {
    const step = this.stepOf(stepId);
    return { stepId, kind: step.kind, problem, change: this.safeDescribe(step) };
  }

  private safeDescribe(step: Step): string[] {
    try {
      const kind = getKind(step.kind)!;
      const params = this.resolveParams(step, kind);
      const snapshot = this.run.steps.get(step.id)?.snapshot;
      return kind.describe(params, snapshot ?? undefined).map((l) => this.o.redactor.text(l));
    } catch {
      return [];
    }
  }

  /**
   * Undo the listed steps in order (undoList: last first), each under its own timeout, trying them
   * all — until an undo that guards data refuses: undoing earlier steps then (reopening the old
   * server, maintenance off) would split writes between two servers, so the rest is left on purpose.
   */
  private async rollback(reason: string, todo: UndoItem[]): Promise<RunResult> {
    const ids = todo.map((u) => u.stepId);
    this.journal('rollback-start', {
      reason,
      steps: ids,
      undo: todo.map((u) => ({ stepId: u.stepId, via: u.via })),
    });
    this.o.emit({ type: 'rollback-start', reason, steps: ids });
    await this.lifecycle('rollback', { status: 'rolling-back' });
    const leftovers: Leftover[] = [];
    let stopped: { stepId: string; message: string; rest: string[] } | undefined;
    for (const [i, item] of todo.entries()) {
      const id = item.stepId;
      const step = this.stepOf(id);
      const kind = getKind(step.kind)!;
      if (item.via === 'none') {
        this.journal('undo-skipped', { stepId: id, reason: 'rollback: none' });
        this.emitStep(id, 'skipped', { note: 'rollback: none' });
        continue;
      }
      const t0 = performance.now();
      this.currentStep = id;
      this.journal('undo-start', { stepId: id, via: item.via });
      this.emitStep(id, 'rolling-back');
      const timeoutMs =
        step.undoTimeout !== undefined ? parseDuration(step.undoTimeout)! : this.stepTimeout(step);
      const s = this.run.steps.get(id)!;
      try {
        // Undo runs even after an interrupt: it gets its own signal, not the run's.
        await this.guarded(
          `undo of "${id}"`,
          timeoutMs,
          (signal) => this.undoOne(step, kind, item, s.snapshot, s.outputs, signal),
          false,
        );
        const durationMs = performance.now() - t0;
        this.journal('undo-done', { stepId: id, durationMs: Math.round(durationMs) });
        this.emitStep(id, 'rolled-back', { durationMs });
        if (kind.maintenance === 'enter') this.maintenanceSwitched('exited', 'undo');
        if (kind.maintenance === 'exit') this.maintenanceSwitched('entered', 'undo');
      } catch (e) {
        const info = { code: errorCode(e), message: errorMessage(e) };
        const guards = guardsData(kind, info.code);
        this.journal('undo-failed', {
          stepId: id,
          error: errorRecord(e),
          ...(guards ? { guardsData: true } : {}),
        });
        this.emitStep(id, 'rollback-failed', { error: info });
        leftovers.push(
          this.leftover(
            id,
            guards ? `undo refused to protect data: ${info.message}` : `undo failed: ${info.message}`,
          ),
        );
        if (guards) {
          const rest = todo
            .slice(i + 1)
            .filter((u) => u.via !== 'none')
            .map((u) => u.stepId);
          stopped = { stepId: id, message: info.message, rest };
          this.journal('rollback-stopped', { stepId: id, reason: info.message, notUndone: rest });
          for (const r of rest) {
            this.emitStep(r, 'skipped', { note: `not undone: the rollback stopped at "${id}"` });
            leftovers.push(
              this.leftover(
                r,
                `not undone, on purpose: the rollback stopped when the undo of "${id}" refused; undoing this would let both servers take writes`,
              ),
            );
          }
          break;
        }
      }
    }
    this.currentStep = undefined;
    if (stopped) {
      const st = this.run.steps;
      const undone = ids.filter((x) => st.get(x)?.status === 'undone');
      const msg = `${reason}. Rollback stopped at "${stopped.stepId}": its undo refused to protect data (${stopped.message}). Undone: ${undone.length ? undone.join(', ') : 'nothing'}. Left as they are, on purpose: ${stopped.rest.length ? stopped.rest.join(', ') : 'nothing'}. Maintenance is ${this.run.maintenance.on ? 'ON' : 'off'}. Reconcile the data the refusal names (see \`cutover status ${this.o.runDir}\`), then run \`cutover rollback ${this.o.runDir}\` again`;
      return this.finish('rollback-incomplete', ExitCode.manualActionNeeded, msg, leftovers);
    }
    if (leftovers.length)
      return this.finish(
        'rollback-incomplete',
        ExitCode.manualActionNeeded,
        `${reason}. Rollback incomplete: ${leftovers.length} step(s) need a human (listed below)`,
        leftovers,
      );
    return this.finish(
      'rolled-back',
      ExitCode.failedRolledBack,
      `${reason}. Rolled back ${todo.length} step(s); everything is as it was`,
      [],
    );
  }

  /** One undo: the runbook's `rollback:` override (run as a step of its kind), or the kind's undo(snapshot). */
  private async undoOne(
    step: Step,
    kind: StepKind,
    item: UndoItem,
    snapshot: unknown,
    outputs: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const ctx = this.context(step.id, signal);
    if (item.via === 'override' && step.rollback && step.rollback !== 'none') {
      const rk = getKind(step.rollback.kind)!;
      const rp = this.resolveParams(
        { id: `${step.id} rollback`, kind: rk.kind, with: step.rollback.with },
        rk,
        step.rollback.with ?? {},
      );
      const snap = rk.snapshot ? await rk.snapshot(ctx, rp) : null;
      const out = ((await rk.apply(ctx, rp, snap)) as Record<string, unknown>) ?? {};
      if (rk.verify) await rk.verify(ctx, rp, snap, out);
      return;
    }
    await kind.undo!(ctx, this.resolveParams(step, kind), snapshot, outputs);
  }

  private async finish(
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

  // ---------------------------------------------------------------- rollback from a journal

  /** `cutover rollback RUN_DIR`: undo what the journal says was done, by the same rule as in-process. */
  async rollbackFromJournal(state: RunState, reason: string): Promise<RunResult> {
    this.o.emit({
      type: 'run-start',
      runId: this.o.runId,
      runDir: this.o.runDir,
      mode: 'rollback',
      runbook: this.o.prepared.loaded.file,
      steps: this.steps.map((s) => ({ id: s.id, kind: s.kind, ...(s.name ? { name: s.name } : {}) })),
      resumed: true,
    });
    this.state = state;
    // Outputs feed later steps' templates, undone or not.
    for (const step of this.steps) {
      const s = state.steps.get(step.id);
      if (s) this.scope.steps[step.id] = { outputs: s.outputs ?? {} };
    }
    return this.rollback(reason, this.undoList());
  }
}

/** The journal's form of an error, StepError.details included (the journal redacts it). */
function errorRecord(e: unknown): ErrorRecord {
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

/** An undo that refused, or failed, to protect data: going on with earlier undos could split writes. */
function guardsData(kind: StepKind, code: string): boolean {
  return kind.undoUnsafeAfterNewWrites === true || code.startsWith('UNDO_UNSAFE');
}
