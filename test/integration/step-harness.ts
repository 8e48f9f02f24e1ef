// Drives step kinds without the CLI or the executor: real adapters (live, or recording for a dry
// run) and a StepContext with a real AbortSignal and the engine's own sleep and poll
// (src/util/sleep.ts, src/engine/waits.ts).
// The aws, mysql and ops harnesses add their databases and their way of running a step.
import {
  type AdapterEnv,
  type AdapterMode,
  Adapters,
  type AwsSettings,
  newStats,
  type PlannedChange,
  renderChange,
} from '../../src/adapters/adapters.js';
import type { Progress, StepContext, StepKind } from '../../src/engine/types.js';
import { pollUntil } from '../../src/engine/waits.js';
import { sleep } from '../../src/util/sleep.js';
import { StepError } from '../../src/errors.js';
import type { DatabaseConfig } from '../../src/runbook/schema.js';

export interface Harness {
  readonly adapters: Adapters;
  readonly env: AdapterEnv;
  readonly stats: ReturnType<typeof newStats>;
  readonly plan: PlannedChange[];
  readonly logs: string[];
  readonly warnings: string[];
  readonly progress: Progress[];
  /** Milliseconds spent in ctx.sleep (polling intervals, TTL countdown): the waits a bench subtracts. */
  sleptMs: number;
  ctx(stepId?: string): StepContext;
  planLines(): string[];
  close(): Promise<void>;
}

/**
 * The sandbox's databases as a runbook names them: the tool's account on old and new, the
 * application's account on each server and through the DNS name (app), and repl, the account old
 * uses to replicate from new (reverse replication).
 */
export function sandboxDatabases(env: Record<string, string | undefined>): Record<string, DatabaseConfig> {
  const common = {
    port: Number(env.SANDBOX_DB_PORT),
    database: env.SANDBOX_DB_NAME!,
    connectTimeoutMs: 3000,
  };
  const tool = { ...common, user: env.SANDBOX_DB_USER!, password: env.SANDBOX_DB_PASSWORD! };
  const app = { ...common, user: env.SANDBOX_APP_DB_USER!, password: env.SANDBOX_APP_DB_PASSWORD! };
  return {
    old: { name: 'old', host: env.SANDBOX_OLD_DB_HOST!, ...tool },
    new: { name: 'new', host: env.SANDBOX_NEW_DB_HOST!, ...tool },
    app: { name: 'app', host: env.SANDBOX_RECORD_NAME!, resolvers: [env.SANDBOX_DNS_SERVER!], ...app },
    'app-old': { name: 'app-old', host: env.SANDBOX_OLD_DB_HOST!, ...app },
    'app-new': { name: 'app-new', host: env.SANDBOX_NEW_DB_HOST!, ...app },
    repl: { name: 'repl', host: env.SANDBOX_NEW_DB_HOST!, ...tool },
  };
}

export interface HarnessOptions {
  mode: AdapterMode;
  env: Record<string, string | undefined>;
  databases?: Record<string, DatabaseConfig>;
  aws?: AwsSettings;
  runId?: string;
  budgetMs?: number;
  /** Aborts every context's waits (a Ctrl-C or a step timeout in the engine). */
  signal?: AbortSignal;
}

export function createStepHarness(o: HarnessOptions): Harness {
  const plan: PlannedChange[] = [];
  const stats = newStats();
  const env: AdapterEnv = {
    mode: o.mode,
    env: o.env,
    cwd: process.cwd(),
    aws: o.aws ?? {},
    stats,
    database: (name) => {
      const d = o.databases?.[name];
      if (!d) throw new StepError('UNKNOWN_DATABASE', `no database "${name}" in the step harness`);
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
    stats,
    plan,
    logs: [],
    warnings: [],
    progress: [],
    sleptMs: 0,
    planLines: () => plan.map(renderChange),
    close: () => adapters.closeAll(),
    ctx(stepId = 'step') {
      const signal = o.signal ?? new AbortController().signal;
      const pause = async (ms: number) => {
        const started = performance.now();
        try {
          await sleep(ms, signal);
        } finally {
          h.sleptMs += performance.now() - started;
        }
      };
      const progress = (p: Progress) => h.progress.push(p);
      return {
        runId: o.runId ?? 'harness',
        runDir: process.cwd(),
        stepId,
        dryRun: o.mode === 'dry',
        signal,
        adapters,
        ...(o.budgetMs !== undefined ? { budgetMs: o.budgetMs } : {}),
        database: env.database,
        log: (m) => h.logs.push(m),
        warn: (m) => h.warnings.push(m),
        progress,
        sleep: pause,
        poll: (opts) => pollUntil(opts, signal, pause, progress),
      };
    },
  };
  return h;
}

export interface StepRun<P = unknown, S = unknown, O = Record<string, unknown>> {
  params: P;
  snapshot: S;
  outputs: O;
}

/** Round trip through JSON, as the journal does: a kind must not depend on what JSON drops. */
const journaled = <T>(v: T): T => JSON.parse(JSON.stringify(v ?? null)) as T;

/**
 * The engine's order for one step: snapshot (journaled) → apply → verify (live only). An error from
 * apply or verify carries `run` (params, snapshot, outputs so far), so a test can undo as the engine would.
 */
export async function runKind<P, S, O extends Record<string, unknown>>(
  h: Harness,
  kind: StepKind<P, S, O>,
  raw: unknown,
  stepId: string = kind.kind,
  verify = h.adapters.mode === 'live',
): Promise<StepRun<P, S, O>> {
  const params = kind.params.parse(raw);
  const ctx = h.ctx(stepId);
  const snapshot = journaled(kind.snapshot ? await kind.snapshot(ctx, params) : null) as S;
  let outputs = {} as O;
  try {
    outputs = ((await kind.apply(ctx, params, snapshot)) ?? {}) as O;
    if (verify && kind.verify) await kind.verify(ctx, params, snapshot, outputs);
  } catch (e) {
    Object.assign(e as object, { run: { params, snapshot, outputs } });
    throw e;
  }
  return { params, snapshot, outputs: journaled(outputs) };
}
