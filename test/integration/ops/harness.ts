// Drives ops step kinds without the CLI (see ../step-harness.ts) with the sandbox's databases by
// name (old, new, and app: the application's account through the DNS name).
import type { AdapterMode } from '../../../src/adapters/adapters.js';
import type { StepKind } from '../../../src/engine/types.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { createStepHarness, type Harness, sandboxDatabases, runKind, type StepRun } from '../step-harness.js';

export { sandboxDatabases };
export type { Harness };

export function createHarness(o: {
  mode: AdapterMode;
  env: Record<string, string | undefined>;
  databases?: Record<string, DatabaseConfig>;
  runId?: string;
}): Harness {
  return createStepHarness({ ...o, runId: o.runId ?? 'ops-harness' });
}

export interface Ran<P, S, O> {
  params: P;
  snapshot: S;
  outputs?: O;
  error?: unknown;
}

/** The engine's order for one step (see runKind). A failure is returned, not thrown, with the
 * snapshot, so the test can undo from it as the engine would. */
export async function runStep<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  raw: unknown,
  stepId = kind.kind,
): Promise<Ran<P, S, O>> {
  try {
    return await runKind(h, kind, raw, stepId);
  } catch (error) {
    const run = (error as { run?: StepRun<P, S, O> }).run;
    if (!run) throw error;
    return { params: run.params, snapshot: run.snapshot, error };
  }
}

export async function undoStep<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  step: Ran<P, S, O>,
): Promise<void> {
  const snapshot = JSON.parse(JSON.stringify(step.snapshot)) as S;
  await kind.undo!(h.ctx(`${kind.kind} undo`), step.params, snapshot, step.outputs);
}

export function codeOf(e: unknown): string | undefined {
  return (e as { code?: string } | undefined)?.code;
}
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
