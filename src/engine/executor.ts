// The runbook executor. Reads like the runbook it runs: for each step, gate → before checks →
// snapshot (journaled) → apply → verify → after checks; on failure, undo in reverse from snapshots.
// The layers: core.ts (state = fold of the journal, contexts, budget, finish) ← step.ts (one
// step's lifecycle) ← rollback.ts (failure policy and undo) ← this file (the forward run).
import { AbortedError, ExitCode, errorMessage } from '../errors.js';
import { preflightSteps } from '../preflight.js';
import type { Step } from '../runbook/schema.js';
import { getKind } from '../steps/registry.js';
import type { RunResult } from './core.js';
import { Rollbacks } from './rollback.js';
export type { EngineOptions, RunResult } from './core.js';

/** The forward run: for each step, gate → the step's lifecycle (step.ts); on failure, rollback.ts. */
export class Engine extends Rollbacks {
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
        // What an earlier attempt left, as the journal (folded before this step ran) says.
        const prior = resume ? this.run.steps.get(step.id) : undefined;
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
      const { planFailures, deferred } = this.run;
      const failed = planFailures > 0;
      const deferredNote = deferred.length
        ? `; ${deferred.length} check(s) deferred to the real run: ${deferred.join(', ')}`
        : '';
      return this.finish(
        failed ? 'plan-failed' : 'planned',
        failed ? ExitCode.failedRolledBack : ExitCode.ok,
        `${failed ? `plan found ${planFailures} failing check(s)` : 'plan complete'}; nothing was changed${deferredNote}`,
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
      this.journal('preflight-failed', { stepId: f.stepId, error: { code: f.code, message: f.message } });
      this.log('error', `preflight: ${f.message}`, f.stepId);
    }
    return failures.length;
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
}
