// One step's lifecycle: params, before checks, snapshot (journaled before apply), apply with
// retries, verify, after checks; and, for a plan, the recorded writes instead (plan-check-deferred).
import { renderChange } from '../adapters/adapters.js';
import { parseDuration } from '../duration.js';
import { AbortedError, CutoverError, errorCode, errorMessage, StepError } from '../errors.js';
import { deferrable } from '../preflight.js';
import type { Check, Step } from '../runbook/schema.js';
import { getKind } from '../steps/registry.js';
import type { StepState } from './events.js';
import type { StepContext, StepKind } from './types.js';
import { EngineCore, errorRecord, StepFailure } from './core.js';

export abstract class StepLifecycle extends EngineCore {
  /** `detached`: not tied to the run's abort signal (a step a rollback runs forward, after an interrupt). */
  protected async runStep(step: Step, inFlight?: { snapshot: unknown }, detached = false): Promise<void> {
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

      result = await this.guarded(
        `step "${step.id}"`,
        timeoutMs,
        async (signal) => {
          const ctx = this.context(step.id, signal);
          for (const check of step.before ?? []) await this.runCheck(step, check, 'before', signal);

          if (inFlight) {
            // The process died mid-apply: find out whether the change happened before redoing it.
            // Not `applied` (the outer flag that decides undo): whether the dead process's apply took.
            const tookBefore = await timed(() => this.isApplied(kind, ctx, params, snapshot));
            this.log(
              'info',
              tookBefore
                ? 'interrupted step had completed; verified, not re-applied'
                : 'interrupted step had not completed; applying it again',
            );
            if (tookBefore) {
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
        },
        !detached,
      );

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
        if (writesBefore > 0 && deferrable(e) && !this.run.preflightFailed.includes(step.id)) {
          this.journal('plan-check-deferred', { stepId: step.id, error: info, durationMs });
          this.log(
            'warn',
            `deferred to the real run (depends on earlier changes); today it says: ${info.message}`,
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

  protected async isApplied(
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

  protected async runCheck(
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
}
