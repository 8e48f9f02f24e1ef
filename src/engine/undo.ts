// The one rule for what a rollback undoes, from the journal's state alone. The in-process rollback,
// `cutover rollback`, the "needs a human" lists and status all call this, so the engine cannot
// believe one thing about a step and the journal say another (issue 12, "Two undo rules").
import type { RunState, StepRunState } from '../journal/state.js';
import type { UndoVia } from '../journal/records.js';
import type { Step } from '../runbook/schema.js';
import type { StepKind } from './types.js';

export interface UndoItem {
  stepId: string;
  /** kind: the kind's own undo(snapshot); override: the step's `rollback: {kind, with}`; none: `rollback: none` (journaled as skipped). */
  via: UndoVia;
  /** What the step ran to before any undo: done, or a partial change (failed / in-flight). */
  ranTo: 'done' | 'partial';
  /** The kind has an undo but this step's `with` gives it none (shell.run without `undo`): left as it is, for a human. */
  noUndo?: true;
}

/** What a step had reached going forward, whatever undos happened since. */
function forward(s: StepRunState): StepRunState['status'] {
  return s.status === 'undone' || s.status === 'undo-failed' || s.status === 'undo-skipped'
    ? (s.ranTo ?? s.status)
    : s.status;
}

/**
 * Did the step change something that is still in place?
 * - done (or an earlier undo of a done step failed): yes.
 * - failed or in-flight after its snapshot was journaled: apply may have changed part of it. Undone
 *   when the kind restores a snapshot (safe on a half-made change), when apply returned before verify
 *   or a check failed (`applied`), or when the process died inside it (nobody knows how far it got).
 *   This holds for a `rollback:` override too: the runbook's author said how to put the step back.
 * - already undone or skipped: no.
 */
function changed(s: StepRunState, kind: StepKind): 'done' | 'partial' | undefined {
  if (s.status === 'undone' || s.status === 'undo-skipped') return undefined;
  const fwd = forward(s);
  if (fwd === 'done') return 'done';
  if ((fwd === 'failed' || fwd === 'in-flight') && s.applyStarted)
    if (kind.snapshot !== undefined || fwd === 'in-flight' || s.applied === true) return 'partial';
  return undefined;
}

/** How the step is undone, or undefined when it has nothing to undo (read-only, no undo at all). */
export function undoVia(step: Step, kind: StepKind): UndoVia | undefined {
  if (kind.readOnly) return undefined;
  if (step.rollback === 'none') return 'none';
  if (step.rollback) return 'override';
  return kind.undo ? 'kind' : undefined;
}

/** The undo list: every step the journal says changed something, last first, with how to undo it. */
export function undoList(
  state: RunState,
  steps: readonly Step[],
  kindOf: (kind: string) => StepKind | undefined,
): UndoItem[] {
  const out: UndoItem[] = [];
  for (const step of [...steps].reverse()) {
    const s = state.steps.get(step.id);
    const kind = kindOf(step.kind);
    if (!s || !kind) continue;
    const ranTo = changed(s, kind);
    const via = ranTo && undoVia(step, kind);
    if (!ranTo || !via) continue;
    const noUndo = via === 'kind' && kind.hasUndo?.(step.with ?? {}) === false;
    out.push({ stepId: step.id, via, ranTo, ...(noUndo ? { noUndo: true as const } : {}) });
  }
  return out;
}
