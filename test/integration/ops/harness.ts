// Drives ops step kinds without the CLI: real adapters (live, or recording for dry run), a minimal
// StepContext with a real AbortSignal and the engine's poll/sleep semantics, and the sandbox's
// databases by name (old, new, and app: the application's account through the DNS name).
import {
  Adapters,
  type AdapterEnv,
  type AdapterMode,
  newStats,
  type PlannedChange,
  renderChange,
} from '../../../src/adapters/adapters.js';
import { formatMs, StepError } from '../../../src/errors.js';
import type { StepContext, StepKind } from '../../../src/engine/types.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';

export interface Harness {
  readonly adapters: Adapters;
  readonly env: AdapterEnv;
  readonly plan: PlannedChange[];
  readonly logs: string[];
  readonly warnings: string[];
  ctx(stepId?: string): StepContext;
  planLines(): string[];
  close(): Promise<void>;
}

export function sandboxDatabases(env: Record<string, string | undefined>): Record<string, DatabaseConfig> {
  const port = Number(env.SANDBOX_DB_PORT);
  const tool = {
    port,
    user: env.SANDBOX_DB_USER!,
    password: env.SANDBOX_DB_PASSWORD!,
    database: env.SANDBOX_DB_NAME!,
    connectTimeoutMs: 3000,
  };
  return {
    old: { name: 'old', host: env.SANDBOX_OLD_DB_HOST!, ...tool },
    new: { name: 'new', host: env.SANDBOX_NEW_DB_HOST!, ...tool },
    app: {
      name: 'app',
      host: env.SANDBOX_RECORD_NAME!,
      resolvers: [env.SANDBOX_DNS_SERVER!],
      port,
      user: env.SANDBOX_APP_DB_USER!,
      password: env.SANDBOX_APP_DB_PASSWORD!,
      database: env.SANDBOX_DB_NAME!,
      connectTimeoutMs: 3000,
    },
  };
}

export function createHarness(o: {
  mode: AdapterMode;
  env: Record<string, string | undefined>;
  databases?: Record<string, DatabaseConfig>;
  runId?: string;
}): Harness {
  const plan: PlannedChange[] = [];
  const stats = newStats();
  const env: AdapterEnv = {
    mode: o.mode,
    env: o.env,
    cwd: process.cwd(),
    aws: {},
    stats,
    database: (name) => {
      const d = o.databases?.[name];
      if (!d) throw new StepError('UNKNOWN_DATABASE', `no database "${name}" in the ops harness`);
      return d;
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
    planLines: () => plan.map(renderChange),
    close: () => adapters.closeAll(),
    ctx(stepId = 'step') {
      const signal = new AbortController().signal;
      const sleep = (ms: number) =>
        new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason);
          const onAbort = () => {
            clearTimeout(t);
            reject(signal.reason);
          };
          const t = setTimeout(() => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          }, ms);
          signal.addEventListener('abort', onAbort, { once: true });
        });
      const ctx: StepContext = {
        runId: o.runId ?? 'ops-harness',
        runDir: process.cwd(),
        stepId,
        dryRun: o.mode === 'dry',
        signal,
        adapters,
        database: env.database,
        log: (m) => h.logs.push(m),
        warn: (m) => h.warnings.push(m),
        progress: () => {},
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
            await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - Date.now())));
          }
        },
      };
      return ctx;
    },
  };
  return h;
}

export interface Ran<P, S, O> {
  params: P;
  snapshot: S;
  outputs?: O;
  error?: unknown;
}

/**
 * The engine's order for one step: snapshot (round-tripped through JSON, as the journal does) →
 * apply → verify (live only). A failure is returned, not thrown, with the snapshot, so the test can
 * undo from it as the engine would.
 */
export async function runStep<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  raw: unknown,
  stepId = kind.kind,
): Promise<Ran<P, S, O>> {
  const params = kind.params.parse(raw);
  const ctx = h.ctx(stepId);
  const snapshot = JSON.parse(JSON.stringify(kind.snapshot ? await kind.snapshot(ctx, params) : null)) as S;
  try {
    const outputs = ((await kind.apply(ctx, params, snapshot)) ?? {}) as O;
    if (h.adapters.mode === 'live' && kind.verify) await kind.verify(ctx, params, snapshot, outputs);
    return { params, snapshot, outputs: JSON.parse(JSON.stringify(outputs)) as O };
  } catch (error) {
    return { params, snapshot, error };
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
