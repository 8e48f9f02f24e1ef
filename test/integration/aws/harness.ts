// Drives AWS step kinds without the CLI (see ../step-harness.ts), pointed at the sandbox's AWS
// endpoint. Used by the integration tests and bench/aws-flip.ts, which subtracts h.sleptMs.
import type { AdapterMode, AwsSettings } from '../../../src/adapters/adapters.js';
import type { StepKind } from '../../../src/engine/types.js';
import { createStepHarness, type Harness, runKind } from '../step-harness.js';

export type { Harness };

export function createHarness(o: {
  mode: AdapterMode;
  env: Record<string, string | undefined>;
  aws?: AwsSettings;
  budgetMs?: number;
  signal?: AbortSignal;
}): Harness {
  return createStepHarness({
    ...o,
    aws: o.aws ?? { endpoint: o.env.CUTOVER_AWS_ENDPOINT, region: o.env.AWS_REGION },
  });
}

/** The engine's order for one step (see runKind); an error is thrown, carrying `run`. */
export const runStep = runKind;

export async function undoStep<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  step: { params: P; snapshot: S; outputs?: O },
): Promise<void> {
  await kind.undo!(h.ctx(`${kind.kind} undo`), step.params, step.snapshot, step.outputs);
}
