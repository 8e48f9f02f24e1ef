// Test seam for the proofs: CUTOVER_TEST_FAULT=<step>:<apply|verify|undo>:<n>:<fail|kill> fails (or
// SIGKILLs the process) just before the n-th outside call of that phase of that step — writes for
// apply and undo, reads for verify — so a step can be stopped halfway through its real work on the
// real servers. Unset in production; it only ever makes the tool fail, never succeed.
import { StepError } from '../errors.js';
import type { StepState } from './events.js';

type Phase = 'apply' | 'verify' | 'undo';

export interface FaultPoint {
  stepId: string;
  phase: Phase;
  n: number;
  action: 'fail' | 'kill';
}

export function parseFault(spec: string | undefined): FaultPoint | undefined {
  const m = spec?.match(/^(.+):(apply|verify|undo):(\d+):(fail|kill)$/);
  if (!m) return undefined;
  return { stepId: m[1]!, phase: m[2] as Phase, n: Number(m[3]), action: m[4] as 'fail' | 'kill' };
}

const PHASE_OF: Partial<Record<StepState, Phase>> = {
  running: 'apply',
  verifying: 'verify',
  'rolling-back': 'undo',
};

export class FaultInjector {
  private phase: { stepId: string; phase: Phase } | undefined;
  private calls = 0;

  constructor(private readonly point: FaultPoint) {}

  /** Follows the step events: the phase a step is in decides which calls count. */
  onStep(stepId: string, state: StepState): void {
    const phase = PHASE_OF[state];
    if (phase === 'apply' && this.phase?.stepId === stepId && this.phase.phase === 'apply') return; // a retry
    this.phase = phase ? { stepId, phase } : undefined;
    this.calls = 0;
  }

  onCall(kind: 'read' | 'write'): void {
    const p = this.point;
    const at = this.phase;
    if (!at || at.stepId !== p.stepId || at.phase !== p.phase) return;
    if ((p.phase === 'verify' ? 'read' : 'write') !== kind) return;
    if (++this.calls !== p.n) return;
    if (p.action === 'kill') process.kill(process.pid, 'SIGKILL');
    throw new StepError('INJECTED_FAULT', `injected fault: ${p.phase} call ${p.n} of "${p.stepId}"`);
  }
}
