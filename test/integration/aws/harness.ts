// Drives AWS step kinds without the CLI: real adapters (live or recording) and a minimal StepContext
// with a real AbortSignal, the same poll/sleep semantics as the engine, and a tally of time spent
// sleeping (the waits a bench subtracts). Used by the integration tests and bench/aws-flip.ts.
import {
  Adapters,
  type AdapterEnv,
  type AdapterMode,
  type AwsSettings,
  newStats,
  type PlannedChange,
  renderChange,
} from '../../../src/adapters/adapters.js';
import { formatMs, StepError } from '../../../src/errors.js';
import type { Progress, StepContext, StepKind } from '../../../src/engine/types.js';

export interface Harness {
  readonly adapters: Adapters;
  readonly env: AdapterEnv;
  readonly plan: PlannedChange[];
  readonly logs: string[];
  readonly warnings: string[];
  readonly progress: Progress[];
  /** Milliseconds spent in ctx.sleep (polling intervals, TTL countdown). */
  sleptMs: number;
  ctx(stepId?: string): StepContext;
  planLines(): string[];
  close(): Promise<void>;
}

export function createHarness(o: {
  mode: AdapterMode;
  env: Record<string, string | undefined>;
  aws?: AwsSettings;
  budgetMs?: number;
  signal?: AbortSignal;
}): Harness {
  const plan: PlannedChange[] = [];
  const stats = newStats();
  const env: AdapterEnv = {
    mode: o.mode,
    env: o.env,
    cwd: process.cwd(),
    aws: o.aws ?? { endpoint: o.env.CUTOVER_AWS_ENDPOINT, region: o.env.AWS_REGION },
    stats,
    database: (name) => {
      throw new StepError('UNKNOWN_DATABASE', `no database "${name}" in the AWS harness`);
    },
    record: (c) => plan.push(c),
    countRead: (op) => {
      stats.reads[op] = (stats.reads[op] ?? 0) + 1;
    },
    countWrite: (op) => {
      stats.writes[op] = (stats.writes[op] ?? 0) + 1;
    },
  };
  const adapters = new Adapters(env);
  const h: Harness = {
    adapters,
    env,
    plan,
    logs: [],
    warnings: [],
    progress: [],
    sleptMs: 0,
    planLines: () => plan.map(renderChange),
    close: () => adapters.closeAll(),
    ctx(stepId = 'step') {
      const signal = o.signal ?? new AbortController().signal;
      const sleep = (ms: number) =>
        new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason);
          const started = performance.now();
          const done = () => {
            h.sleptMs += performance.now() - started;
            signal.removeEventListener('abort', onAbort);
          };
          const t = setTimeout(() => {
            done();
            resolve();
          }, ms);
          const onAbort = () => {
            clearTimeout(t);
            done();
            reject(signal.reason);
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
      const ctx: StepContext & { budgetMs?: number } = {
        runId: 'harness',
        runDir: process.cwd(),
        stepId,
        dryRun: o.mode === 'dry',
        signal,
        adapters,
        database: env.database,
        log: (m) => h.logs.push(m),
        warn: (m) => h.warnings.push(m),
        progress: (p) => h.progress.push(p),
        sleep,
        poll: async (opts) => {
          const deadline = Date.now() + opts.timeoutMs;
          let last = '';
          for (;;) {
            if (signal.aborted) throw signal.reason;
            const r = await opts.check();
            if (r.done) return r.value as never;
            last = r.status ?? last;
            if (Date.now() >= deadline)
              throw new StepError(
                'WAIT_TIMEOUT',
                `${opts.what}: not reached within ${formatMs(opts.timeoutMs)}${last ? ` (last: ${last})` : ''}`,
              );
            ctx.progress({ label: `${opts.what}${last ? ` — ${last}` : ''}`, deadline });
            await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - Date.now())));
          }
        },
        ...(o.budgetMs !== undefined ? { budgetMs: o.budgetMs } : {}),
      };
      return ctx;
    },
  };
  return h;
}

/** The engine's order for one step: snapshot (round-tripped through JSON like the journal) → apply → verify (live only). */
export async function runStep<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  raw: unknown,
  stepId = kind.kind,
): Promise<{ params: P; snapshot: S; outputs: O }> {
  const params = kind.params.parse(raw);
  const ctx = h.ctx(stepId);
  const snapshot = JSON.parse(JSON.stringify(kind.snapshot ? await kind.snapshot(ctx, params) : null)) as S;
  const outputs = ((await kind.apply(ctx, params, snapshot)) ?? {}) as O;
  if (h.adapters.mode === 'live' && kind.verify) await kind.verify(ctx, params, snapshot, outputs);
  return { params, snapshot, outputs: JSON.parse(JSON.stringify(outputs)) as O };
}

export async function undoStep<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  step: { params: P; snapshot: S; outputs?: O },
): Promise<void> {
  await kind.undo!(h.ctx(`${kind.kind} undo`), step.params, step.snapshot, step.outputs);
}
