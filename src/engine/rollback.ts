// Failure and rollback: what to do after a failure (undo, or stop past the point of no return),
// and the undo loop itself, over the one undo list (undo.ts) in-process and from a journal.
import { parseDuration } from '../duration.js';
import { errorCode, errorMessage, ExitCode } from '../errors.js';
import type { RunState } from '../journal/state.js';
import type { Step } from '../runbook/schema.js';
import { getKind } from '../steps/registry.js';
import type { Leftover } from './events.js';
import type { StepKind } from './types.js';
import type { UndoItem } from './undo.js';
import { errorRecord, type RunResult, StepFailure } from './core.js';
import { StepLifecycle } from './step.js';

export abstract class Rollbacks extends StepLifecycle {
  // ---------------------------------------------------------------- failure and rollback

  protected async onFailure(e: unknown): Promise<RunResult> {
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
      const bridge = this.bridgeStep();
      const net =
        policy === 'auto'
          ? ((await this.rollbackSafetyNet()) ??
            (bridge ? `${bridge.kind} ("${bridge.id}", run now)` : undefined))
          : undefined;
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
  protected async rollbackSafetyNet(): Promise<string | undefined> {
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
  protected pendingLeftovers(problem: string): Leftover[] {
    // In runbook order, as they were made (the undo list itself is last-first).
    return this.undoList()
      .filter((u) => u.via !== 'none')
      .reverse()
      .map((u) => this.leftover(u.stepId, problem));
  }

  protected leftover(stepId: string, problem: string): Leftover {
    const step = this.stepOf(stepId);
    return { stepId, kind: step.kind, problem, change: this.restoreLines(step) };
  }

  /**
   * What a human puts back for this step: the runbook's `rollback:` override, the kind's own
   * restore hint from the snapshot, or failing those the change itself, said as one to reverse.
   */
  protected restoreLines(step: Step): string[] {
    const s = this.run.steps.get(step.id);
    try {
      const kind = getKind(step.kind)!;
      let lines: string[];
      if (step.rollback && step.rollback !== 'none') {
        const rk = getKind(step.rollback.kind)!;
        const rp = this.resolveParams(
          { id: `${step.id} rollback`, kind: rk.kind, with: step.rollback.with },
          rk,
          step.rollback.with ?? {},
        );
        lines = rk
          .describe(rp, undefined)
          .map((l) => `do what the runbook's rollback does: ${l.replace(/^would /, '')}`);
      } else {
        const params = this.resolveParams(step, kind);
        lines = kind.restoreHint
          ? kind.restoreHint(params, s?.snapshot ?? undefined, s?.outputs ?? undefined)
          : kind
              .describe(params, s?.snapshot ?? undefined)
              .map((l) => `reverse what the step did: ${l.replace(/^would /, '')}`);
      }
      return lines.map((l) => this.o.redactor.text(l));
    } catch {
      return [];
    }
  }

  /**
   * Undo the listed steps in order (undoList: last first), each under its own timeout, trying them
   * all — until an undo that guards data refuses: undoing earlier steps then (reopening the old
   * server, maintenance off) would split writes between two servers, so the rest is left on purpose.
   */
  /**
   * With no healthy reverse replication: would a data-guarding undo refuse? Then nothing is undone
   * at all — DNS stays on the server that has the writes (a kill can land after the flip's change
   * and before its point-of-no-return record, so this does not wait for that record).
   */
  private async blockedUpFront(todo: UndoItem[]): Promise<string | undefined> {
    const guarded = todo.some((u) => u.via === 'kind' && getKind(this.stepOf(u.stepId).kind)?.undoBlocker);
    if (!guarded || (await this.rollbackSafetyNet())) return undefined;
    for (const item of todo) {
      const step = this.stepOf(item.stepId);
      const kind = getKind(step.kind)!;
      const s = this.run.steps.get(item.stepId);
      if (item.via !== 'kind' || !kind.undoBlocker || !s?.snapshot) continue;
      const params = this.resolveParams(step, kind);
      const why = await this.guarded(`${step.id} undo check`, 60_000, (signal) =>
        kind.undoBlocker!(this.context(step.id, signal), params, s.snapshot, s.outputs),
      ).catch((e) => `its undo cannot be checked (${errorMessage(e)})`);
      if (why) return `step "${step.id}": ${why}`;
    }
    return undefined;
  }

  /**
   * The step that carries the new primary's writes back (reverse replication) when the run failed
   * or died before it ran or finished: a rollback runs it forward first, so the writes the new
   * server took since the switch reach the old one before anything is undone (issue 12: a kill
   * between the flip and reverse replication, or its own apply failed halfway).
   */
  protected bridgeStep(): Step | undefined {
    return this.steps.find((step) => {
      const kind = getKind(step.kind);
      const s = this.run.steps.get(step.id);
      // Only a step the rollback will also undo by its kind: one left running (`rollback: none`, or
      // an override) would replicate in a circle once the old pair's replication restarts.
      return (
        kind?.keepsRollbackSafe &&
        kind.isRollbackSafe &&
        step.rollback === undefined &&
        (!s || s.status === 'pending' || s.status === 'in-flight' || s.status === 'failed')
      );
    });
  }

  /** Run the bridge step forward; undefined when it ran and is healthy, else why not. */
  private async bridge(step: Step): Promise<string | undefined> {
    const s = this.run.steps.get(step.id);
    this.log('info', `replicating the new primary's writes back first: running "${step.id}" (${step.kind})`);
    try {
      await this.runStep(
        step,
        // Half-applied: keep the snapshot from before its first change, so its undo restores that.
        s?.applyStarted ? { snapshot: s.snapshot } : undefined,
        true,
      );
    } catch (e) {
      return `running "${step.id}" to carry them back failed: ${e instanceof StepFailure ? e.info.message : errorMessage(e)}`;
    }
    return (await this.rollbackSafetyNet()) ? undefined : `"${step.id}" ran but is not healthy`;
  }

  protected async rollback(reason: string, todo: UndoItem[], requested = false): Promise<RunResult> {
    let blocked = await this.blockedUpFront(todo);
    const bridge = blocked ? this.bridgeStep() : undefined;
    if (blocked && bridge) {
      const failed = await this.bridge(bridge);
      if (failed) blocked = `${blocked}; ${failed}`;
      else {
        todo = this.undoList();
        blocked = await this.blockedUpFront(todo);
      }
    }
    if (blocked) {
      const msg = `${reason}. Rollback refused before undoing anything: ${blocked}. Nothing was undone: clients stay on the server that has their writes. Finish with \`cutover resume ${this.o.runDir}\`, or replicate the writes back (mysql.replication.reverse) and roll back then`;
      return this.finish(
        'halted',
        ExitCode.manualActionNeeded,
        msg,
        this.pendingLeftovers('left in place: a rollback now would strand writes'),
      );
    }
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
      if (item.noUndo) {
        // Nothing can put it back: saying "rolled back" would hide a change that is still in place.
        const why = `left as it is: ${step.kind} has no undo here`;
        this.journal('undo-skipped', { stepId: id, reason: why });
        this.emitStep(id, 'skipped', { note: why });
        leftovers.push(this.leftover(id, why));
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
    // Asked for (`cutover rollback`), "rolled back" is the success: the event, the journal and the
    // process all carry the same 0, so what is printed is what the shell sees.
    return this.finish(
      'rolled-back',
      requested ? ExitCode.ok : ExitCode.failedRolledBack,
      `${reason}. Rolled back ${todo.length} step(s); everything is as it was`,
      [],
    );
  }

  /** One undo: the runbook's `rollback:` override (run as a step of its kind), or the kind's undo(snapshot). */
  protected async undoOne(
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
    return this.rollback(reason, this.undoList(), true);
  }
}

/** An undo that refused, or failed, to protect data: going on with earlier undos could split writes. */
function guardsData(kind: StepKind, code: string): boolean {
  return kind.undoUnsafeAfterNewWrites === true || code.startsWith('UNDO_UNSAFE');
}
