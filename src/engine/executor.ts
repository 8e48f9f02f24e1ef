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
import type { Journal } from '../journal/journal.js';
import type { Redactor } from '../journal/redact.js';
import type { RunState } from '../journal/state.js';
import { deferrable, preflightSteps } from '../preflight.js';
import type { Check, Step } from '../runbook/schema.js';
import { parseParams } from '../runbook/coerce.js';
import { quotingFor, render, type Scope, TemplateError } from '../runbook/template.js';
import type { PreparedRunbook } from '../runbook/validate.js';
import { getKind } from '../steps/registry.js';
import { sleep } from '../util/sleep.js';
import type { Emit, ErrorInfo, Leftover, Lifecycle, LifecycleEvent, RunStatus, StepState } from './events.js';
import type { Progress, StepContext, StepKind } from './types.js';
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

interface Completed {
  step: Step;
  kind: StepKind;
  params: unknown;
  snapshot: unknown;
  outputs: Record<string, unknown> | undefined;
  /** done, or failed/in-flight with a snapshot-based undo that is safe to run anyway. */
  status: 'done' | 'partial';
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
  private readonly scope: Scope;
  private readonly completed: Completed[] = [];
  private readonly runAbort = new AbortController();
  private readonly started = performance.now();
  private currentStep: string | undefined;
  private currentPlan: PlannedChange[] = [];
  private pnrStep: string | undefined;
  private maintenanceStart: number | undefined;
  private maintenanceMs: number | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private readonly timings: RunResult['timings'] = [];
  private planFailures = 0;
  /** Steps whose preflight failed: already counted, and never "deferred". */
  private readonly preflightFailed = new Set<string>();
  /** Plan checks that depend on an earlier step's recorded write: listed apart at the end. */
  private readonly deferred: { stepId: string; message: string }[] = [];
  private plannedWrites = 0;
  private changesMade = false;

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

  private journal(type: string, data: Record<string, unknown> = {}) {
    return this.o.journal.append(type, data);
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
    if (resume) this.journal('run-resume', {});
    await this.preload();
    if (!resume) {
      let refused: string | undefined;
      try {
        const n = await this.preflight();
        if (n && this.o.mode === 'run') refused = `preflight refused ${n} step(s) (listed above)`;
      } catch (e) {
        refused = `preflight stopped: ${errorMessage(e)}`;
      }
      if (refused)
        return this.finish(
          this.o.mode === 'plan' ? 'plan-failed' : 'rolled-back',
          ExitCode.failedRolledBack,
          `${refused}; nothing was changed`,
          [],
        );
    }
    await this.lifecycle('start');
    for (const w of prepared.warnings)
      this.log('warn', `${w.pos.file}:${w.pos.line}:${w.pos.col} ${w.message}`);

    try {
      for (const step of this.steps) {
        const prior = resume?.steps.get(step.id);
        if (prior?.status === 'done') {
          this.restoreCompleted(step, prior.snapshot, prior.outputs ?? {});
          this.emitStep(step.id, 'done', { note: 'done in an earlier attempt' });
          continue;
        }
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
      this.stopMaintenanceClock();
    }
    if (this.o.mode === 'plan') {
      const failed = this.planFailures > 0;
      for (const d of this.deferred)
        this.log(
          'warn',
          `deferred to the real run (depends on earlier changes); today it says: ${d.message}`,
          d.stepId,
        );
      const deferredNote = this.deferred.length
        ? `; ${this.deferred.length} check(s) deferred to the real run: ${this.deferred.map((d) => d.stepId).join(', ')}`
        : '';
      return this.finish(
        failed ? 'plan-failed' : 'planned',
        failed ? ExitCode.failedRolledBack : ExitCode.ok,
        `${failed ? `plan found ${this.planFailures} failing check(s)` : 'plan complete'}; nothing was changed${deferredNote}`,
        [],
      );
    }
    await this.lifecycle('success', { status: 'succeeded' });
    return this.finish('succeeded', ExitCode.ok, 'cutover complete', []);
  }

  /**
   * Every step's preflight (checks no earlier change can alter) before the first step: one error
   * line per refused step. A plan counts them as failures; a run refuses to start.
   */
  private async preflight(): Promise<number> {
    const failures = await preflightSteps(this.steps, this.scope, (step, check) =>
      this.guarded(`step "${step.id}" preflight`, this.stepTimeout(step), (signal) =>
        check(this.context(step.id, signal)),
      ),
    );
    for (const f of failures) {
      this.preflightFailed.add(f.stepId);
      this.journal('preflight-failed', { stepId: f.stepId, error: { code: f.code, message: f.message } });
      this.log('error', `preflight: ${f.message}`, f.stepId);
    }
    if (this.o.mode === 'plan') this.planFailures += failures.length;
    return failures.length;
  }

  /** Module loading costs hundreds of ms: pay it before the first step, outside any maintenance window. */
  private async preload(): Promise<void> {
    const used = new Set(this.steps.map((s) => getKind(s.kind)!));
    await Promise.all([...used].map((k) => k.preload?.().catch(() => undefined)));
  }

  private restoreCompleted(step: Step, snapshot: unknown, outputs: Record<string, unknown>) {
    const kind = getKind(step.kind)!;
    this.scope.steps[step.id] = { outputs };
    let params: unknown;
    try {
      params = this.resolveParams(step, kind);
    } catch {
      params = undefined; // re-resolved at undo time if it is ever needed
    }
    this.completed.push({ step, kind, params, snapshot, outputs, status: 'done' });
    this.changesMade ||= !kind.readOnly;
    if (step.pointOfNoReturn) this.pnrStep = step.id;
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
    let snapshotTaken = !!inFlight;
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
          snapshotTaken = true;
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
          this.plannedWrites += this.currentPlan.length;
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
            this.changesMade ||= !kind.readOnly;
            const outputs =
              ((await timed(() => kind.apply(ctx, params, snapshot))) as Record<string, unknown>) ?? {};
            applied = true;
            if (kind.maintenance === 'enter') this.startMaintenanceClock();
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
              error: { code: errorCode(e), message: errorMessage(e) },
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
        // Only a failure an earlier change could cure is deferred: privileges, platform refusals
        // and the step's preflight problems are failures wherever the step sits.
        this.scope.steps[step.id] = { outputs: {} };
        if (writesBefore > 0 && deferrable(e) && !this.preflightFailed.has(step.id)) {
          this.journal('plan-check-deferred', { stepId: step.id, error: info, durationMs });
          this.deferred.push({ stepId: step.id, message: info.message });
          this.emitStep(step.id, 'planned', { durationMs, note: 'check deferred to the real run' });
          this.currentStep = undefined;
          return;
        }
        if (!this.preflightFailed.has(step.id)) this.planFailures++;
        this.journal('step-failed', { stepId: step.id, error: info, durationMs });
        this.emitStep(step.id, 'failed', { error: info, durationMs });
        this.scope.steps[step.id] = { outputs: {} };
        this.currentStep = undefined;
        return;
      }
      this.journal('step-failed', {
        stepId: step.id,
        error: info,
        durationMs,
        ...(applied ? { applied: true } : {}),
      });
      this.emitStep(step.id, 'failed', { error: info, durationMs });
      // A failed step whose undo restores a snapshot is undone too: it may have half-applied. One
      // whose apply completed (verify or an after check failed) made its change: undo it as well.
      const partial: Completed = { step, kind, params, snapshot, outputs: undefined, status: 'partial' };
      if ((snapshotTaken && kind.snapshot && kind.undo) || (applied && this.undoable(partial)))
        this.completed.push(partial);
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
    this.completed.push({ step, kind, params, snapshot, outputs, status: 'done' });
    if (kind.maintenance === 'exit') this.stopMaintenanceClock(true);
    this.emitStep(step.id, 'done', { durationMs: totalMs });
    await this.lifecycle('after-step', { stepId: step.id, kind: step.kind }, true).catch(async (e) => {
      // The change is made and journaled: fail the run so it is undone with the rest.
      throw new StepFailure(step.id, { code: 'HOOK_FAILED', message: errorMessage(e) }, e);
    });
    if (step.pointOfNoReturn) {
      this.pnrStep = step.id;
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
      this.journal('check', {
        stepId: step.id,
        phase,
        check: label,
        ok: false,
        error: { code: errorCode(e), message: errorMessage(e) },
      });
      if (e instanceof CutoverError && (e.code === 'ABORTED' || e.code === 'STEP_TIMEOUT')) throw e;
      throw new StepError(
        e instanceof CutoverError ? e.code : 'CHECK_FAILED',
        `${phase} check ${label} failed: ${errorMessage(e)}`,
      );
    }
  }

  // ---------------------------------------------------------------- maintenance budget

  private startMaintenanceClock() {
    if (this.maintenanceStart !== undefined) return;
    this.maintenanceStart = performance.now();
    const budgetMs = this.o.prepared.budgetMs;
    this.journal('maintenance', { state: 'entered', budgetMs });
    this.o.emit({
      type: 'maintenance',
      state: 'entered',
      elapsedMs: 0,
      ...(budgetMs !== undefined ? { budgetMs } : {}),
    });
    this.maintenanceTimer = setInterval(() => {
      const elapsedMs = performance.now() - this.maintenanceStart!;
      this.o.emit({
        type: 'maintenance',
        state: 'tick',
        elapsedMs,
        ...(budgetMs !== undefined ? { budgetMs } : {}),
      });
      if (budgetMs !== undefined && elapsedMs > budgetMs && !this.runAbort.signal.aborted) {
        this.o.emit({ type: 'maintenance', state: 'over-budget', elapsedMs, budgetMs });
        this.runAbort.abort(
          new StepError(
            'MAINTENANCE_BUDGET_EXCEEDED',
            `maintenance budget of ${formatMs(budgetMs)} exceeded`,
          ),
        );
      }
    }, 250);
    this.maintenanceTimer.unref();
  }

  private stopMaintenanceClock(exited = false) {
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    this.maintenanceTimer = undefined;
    if (this.maintenanceStart === undefined) return;
    this.maintenanceMs = performance.now() - this.maintenanceStart;
    this.maintenanceStart = undefined;
    if (exited) {
      const budgetMs = this.o.prepared.budgetMs;
      this.journal('maintenance', { state: 'exited', elapsedMs: Math.round(this.maintenanceMs), budgetMs });
      this.o.emit({
        type: 'maintenance',
        state: 'exited',
        elapsedMs: this.maintenanceMs,
        ...(budgetMs !== undefined ? { budgetMs } : {}),
      });
    }
  }

  // ---------------------------------------------------------------- failure and rollback

  private async onFailure(e: unknown): Promise<RunResult> {
    // Stop the budget from aborting the rollback, but keep the window open: undoing the step that
    // entered maintenance closes it (and journals when).
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    this.maintenanceTimer = undefined;
    const failure =
      e instanceof StepFailure
        ? e
        : new StepFailure(this.currentStep ?? '-', { code: errorCode(e), message: errorMessage(e) }, e);
    const interrupted = failure.info.code === 'ABORTED';
    const reason = `step "${failure.stepId}" failed: ${failure.info.message}`;

    if (this.o.mode === 'plan')
      return this.finish('plan-failed', ExitCode.failedRolledBack, `${reason}; nothing was changed`, []);

    if (this.pnrStep) {
      const net = await this.rollbackSafetyNet();
      if (!net) {
        const msg = `${reason}. Past the point of no return ("${this.pnrStep}"): nothing was undone automatically. Check the state below, then undo on purpose with \`cutover rollback ${this.o.runDir}\` or finish with \`cutover resume ${this.o.runDir}\``;
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
    return this.rollbackCompleted(reason);
  }

  /** Which completed keepsRollbackSafe step (reverse replication) is healthy, if any. */
  private async rollbackSafetyNet(): Promise<string | undefined> {
    for (const c of this.completed) {
      if (!c.kind.keepsRollbackSafe || !c.kind.isRollbackSafe || c.status !== 'done') continue;
      try {
        const ok = await this.guarded(
          `${c.step.id} health`,
          30_000,
          (signal) =>
            c.kind.isRollbackSafe!(this.context(c.step.id, signal), c.params, c.snapshot, c.outputs),
          false,
        );
        if (ok) return `${c.step.kind} ("${c.step.id}")`;
      } catch {
        // unhealthy: keep looking
      }
    }
    return undefined;
  }

  private undoable(c: Completed): boolean {
    if (c.kind.readOnly) return false;
    return c.step.rollback !== undefined || !!c.kind.undo;
  }

  private pendingLeftovers(problem: string): Leftover[] {
    return this.completed
      .filter((c) => this.undoable(c) && c.step.rollback !== 'none')
      .map((c) => ({
        stepId: c.step.id,
        kind: c.step.kind,
        problem,
        change: this.safeDescribe(c),
      }));
  }

  private safeDescribe(c: Completed): string[] {
    try {
      return c.params === undefined
        ? []
        : c.kind.describe(c.params, c.snapshot ?? undefined).map((l) => this.o.redactor.text(l));
    } catch {
      return [];
    }
  }

  /** Undo every completed step in reverse, each under its own timeout; try them all. */
  async rollbackCompleted(reason: string, list = this.completed): Promise<RunResult> {
    const todo = [...list].reverse().filter((c) => this.undoable(c));
    this.journal('rollback-start', { reason, steps: todo.map((c) => c.step.id) });
    this.o.emit({ type: 'rollback-start', reason, steps: todo.map((c) => c.step.id) });
    await this.lifecycle('rollback', { status: 'rolling-back' });
    const leftovers: Leftover[] = [];
    for (const c of todo) {
      const id = c.step.id;
      if (c.step.rollback === 'none') {
        this.journal('undo-skipped', { stepId: id, reason: 'rollback: none' });
        this.emitStep(id, 'skipped', { note: 'rollback: none' });
        continue;
      }
      const t0 = performance.now();
      this.currentStep = id;
      this.journal('undo-start', { stepId: id });
      this.emitStep(id, 'rolling-back');
      const timeoutMs =
        c.step.undoTimeout !== undefined ? parseDuration(c.step.undoTimeout)! : this.stepTimeout(c.step);
      try {
        // Undo runs even after an interrupt: it gets its own signal, not the run's.
        await this.guarded(
          `undo of "${id}"`,
          timeoutMs,
          async (signal) => {
            const ctx = this.context(id, signal);
            const params = c.params ?? this.resolveParams(c.step, c.kind);
            if (c.step.rollback && c.step.rollback !== 'none') {
              const rk = getKind(c.step.rollback.kind)!;
              const rp = this.resolveParams(
                { id: `${id} rollback`, kind: rk.kind, with: c.step.rollback.with },
                rk,
                c.step.rollback.with ?? {},
              );
              const snap = rk.snapshot ? await rk.snapshot(ctx, rp) : null;
              const out = ((await rk.apply(ctx, rp, snap)) as Record<string, unknown>) ?? {};
              if (rk.verify) await rk.verify(ctx, rp, snap, out);
            } else {
              await c.kind.undo!(ctx, params, c.snapshot, c.outputs);
            }
          },
          false,
        );
        const durationMs = performance.now() - t0;
        this.journal('undo-done', { stepId: id, durationMs: Math.round(durationMs) });
        this.emitStep(id, 'rolled-back', { durationMs });
        if (c.kind.maintenance === 'enter') this.stopMaintenanceClock(true);
      } catch (e) {
        const info = { code: errorCode(e), message: errorMessage(e) };
        this.journal('undo-failed', { stepId: id, error: info });
        this.emitStep(id, 'rollback-failed', { error: info });
        leftovers.push({
          stepId: id,
          kind: c.step.kind,
          problem: `undo failed: ${info.message}`,
          change: this.safeDescribe(c),
        });
      }
    }
    this.currentStep = undefined;
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

  private async finish(
    status: RunStatus,
    exitCode: number,
    message: string,
    leftovers: Leftover[],
  ): Promise<RunResult> {
    this.stopMaintenanceClock();
    const durationMs = performance.now() - this.started;
    const msg = this.o.redactor.text(message);
    this.journal('run-end', {
      status,
      exitCode,
      message: msg,
      durationMs: Math.round(durationMs),
      leftovers,
      ...(this.maintenanceMs !== undefined ? { maintenanceMs: Math.round(this.maintenanceMs) } : {}),
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
      planFailures: this.planFailures,
      ...(this.maintenanceMs !== undefined ? { maintenanceMs: this.maintenanceMs } : {}),
    };
    this.o.emit(
      this.o.redactor.value({
        type: 'run-end',
        status,
        exitCode,
        durationMs,
        message: msg,
        leftovers,
        ...(this.maintenanceMs !== undefined ? { maintenanceMs: this.maintenanceMs } : {}),
      }),
    );
    return result;
  }

  // ---------------------------------------------------------------- rollback from a journal

  /** `cutover rollback RUN_DIR`: undo what the journal says was done, in reverse. */
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
    const list: Completed[] = [];
    for (const step of this.steps) {
      const s = state.steps.get(step.id);
      if (!s) continue;
      const kind = getKind(step.kind)!;
      // Outputs feed later steps' templates, undone or not.
      this.scope.steps[step.id] = { outputs: s.outputs ?? {} };
      const partial =
        (s.status === 'failed' || s.status === 'in-flight' || s.status === 'undo-failed') && s.applyStarted;
      const eligible =
        s.status === 'done' ||
        (s.status === 'undo-failed' && s.ranTo === 'done') ||
        (partial && (kind.snapshot !== undefined || s.status === 'in-flight' || s.applied === true));
      if (!eligible) continue;
      list.push({
        step,
        kind,
        params: undefined,
        snapshot: s.snapshot,
        outputs: s.outputs,
        status: s.status === 'done' ? 'done' : 'partial',
      });
    }
    return this.rollbackCompleted(reason, list);
  }
}
