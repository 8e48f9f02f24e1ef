// Drives MySQL step kinds without the CLI, the way the engine does: real adapters (live or
// recording), a StepContext with a real AbortSignal, the snapshot passed through JSON before apply
// (as it is journaled), verify only in live mode, undo from the JSON snapshot. Also used by
// bench/mysql-stop.ts.
import type { Connection } from 'mysql2/promise';
import {
  type AdapterEnv,
  type AdapterMode,
  Adapters,
  newStats,
  type PlannedChange,
  renderChange,
} from '../../../src/adapters/adapters.js';
import type { Progress, StepContext, StepKind } from '../../../src/engine/types.js';
import { formatMs, StepError } from '../../../src/errors.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { mysqlKinds } from '../../../src/steps/mysql/index.js';

export type Env = Record<string, string>;

/** The runbook-style databases of the sandbox: the tool's and the application's accounts on both servers. */
export function sandboxDatabases(env: Env): Record<string, DatabaseConfig> {
  const port = Number(env.SANDBOX_DB_PORT);
  const base = { port, connectTimeoutMs: 2000 };
  const tool = { user: env.SANDBOX_DB_USER!, password: env.SANDBOX_DB_PASSWORD! };
  const app = {
    user: env.SANDBOX_APP_DB_USER!,
    password: env.SANDBOX_APP_DB_PASSWORD!,
    database: env.SANDBOX_DB_NAME!,
  };
  const dbs: Record<string, DatabaseConfig> = {
    old: { name: 'old', host: env.SANDBOX_OLD_DB_HOST!, ...base, ...tool },
    new: { name: 'new', host: env.SANDBOX_NEW_DB_HOST!, ...base, ...tool },
    'app-old': { name: 'app-old', host: env.SANDBOX_OLD_DB_HOST!, ...base, ...app },
    'app-new': { name: 'app-new', host: env.SANDBOX_NEW_DB_HOST!, ...base, ...app },
    // The account the old server uses to replicate from the new one (reverse replication).
    repl: { name: 'repl', host: env.SANDBOX_NEW_DB_HOST!, ...base, ...tool },
  };
  return dbs;
}

export interface Harness {
  readonly adapters: Adapters;
  readonly plan: PlannedChange[];
  readonly logs: string[];
  readonly warnings: string[];
  readonly progress: Progress[];
  readonly stats: ReturnType<typeof newStats>;
  ctx(stepId?: string): StepContext;
  planLines(): string[];
  close(): Promise<void>;
}

export function createHarness(o: {
  mode: AdapterMode;
  env: Env;
  databases?: Record<string, DatabaseConfig>;
  signal?: AbortSignal;
}): Harness {
  const plan: PlannedChange[] = [];
  const stats = newStats();
  const dbs = { ...sandboxDatabases(o.env), ...(o.databases ?? {}) };
  const env: AdapterEnv = {
    mode: o.mode,
    env: o.env,
    cwd: process.cwd(),
    aws: {},
    stats,
    database: (name) => {
      const d = dbs[name];
      if (!d) throw new StepError('UNKNOWN_DATABASE', `unknown database "${name}"`);
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
    plan,
    logs: [],
    warnings: [],
    progress: [],
    stats,
    planLines: () => plan.map(renderChange),
    close: () => adapters.closeAll(),
    ctx(stepId = 'step') {
      const signal = o.signal ?? new AbortController().signal;
      const sleep = (ms: number) =>
        new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason);
          const t = setTimeout(() => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          }, ms);
          const onAbort = () => {
            clearTimeout(t);
            reject(signal.reason);
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
      const ctx: StepContext = {
        runId: 'test-run',
        runDir: '/tmp',
        stepId,
        dryRun: o.mode === 'dry',
        signal,
        adapters,
        database: (name) => env.database(name),
        log: (m) => h.logs.push(m),
        warn: (m) => h.warnings.push(m),
        progress: (p) => h.progress.push(p),
        sleep,
        poll: async (po) => {
          const deadline = Date.now() + po.timeoutMs;
          let last = '';
          for (;;) {
            if (signal.aborted) throw signal.reason;
            const r = await po.check();
            if (r.done) return r.value as never;
            last = r.status ?? last;
            if (Date.now() >= deadline)
              throw new StepError(
                'WAIT_TIMEOUT',
                `${po.what}: not reached within ${formatMs(po.timeoutMs)}${last ? ` (last: ${last})` : ''}`,
              );
            await sleep(Math.min(po.intervalMs, Math.max(0, deadline - Date.now())));
          }
        },
      };
      return ctx;
    },
  };
  return h;
}

export function kind(name: string): StepKind {
  const k = mysqlKinds.find((x) => x.kind === name);
  if (!k) throw new Error(`no kind ${name}`);
  return k;
}

export interface StepRun {
  params: unknown;
  snapshot: unknown;
  outputs: Record<string, unknown>;
}

/** snapshot (JSON round trip, as journaled) → apply → verify (live only), like the executor. */
export async function runStep(
  h: Harness,
  kindName: string,
  with_: Record<string, unknown>,
  mode: AdapterMode = h.adapters.mode,
): Promise<StepRun> {
  const k = kind(kindName);
  const params = k.params.parse(with_);
  const ctx = h.ctx(kindName);
  const snapshot = k.snapshot ? JSON.parse(JSON.stringify((await k.snapshot(ctx, params)) ?? null)) : null;
  let outputs: Record<string, unknown> = {};
  try {
    outputs = ((await k.apply(ctx, params, snapshot)) as Record<string, unknown>) ?? {};
    if (mode === 'live' && k.verify) await k.verify(ctx, params, snapshot, outputs);
  } catch (e) {
    Object.assign(e as object, { run: { params, snapshot, outputs } });
    throw e;
  }
  return { params, snapshot, outputs: JSON.parse(JSON.stringify(outputs)) };
}

/** The engine's undo: a fresh adapter set (another process after a crash), snapshot from JSON. */
export async function undoStep(
  env: Env,
  kindName: string,
  run: StepRun,
  databases?: Record<string, DatabaseConfig>,
): Promise<Harness> {
  const h = createHarness({ mode: 'live', env, ...(databases ? { databases } : {}) });
  try {
    await kind(kindName).undo!(h.ctx(`undo ${kindName}`), run.params, run.snapshot, run.outputs);
  } finally {
    await h.close();
  }
  return h;
}

/** A plain mysql2 connection with the tool's account, for assertions made outside the kinds. */
export async function connect(
  env: Env,
  role: 'old' | 'new',
  account: 'tool' | 'app' = 'tool',
): Promise<Connection> {
  const mysql = await import('mysql2/promise');
  return mysql.createConnection({
    host: role === 'old' ? env.SANDBOX_OLD_DB_HOST : env.SANDBOX_NEW_DB_HOST,
    port: Number(env.SANDBOX_DB_PORT),
    user: account === 'tool' ? env.SANDBOX_DB_USER : env.SANDBOX_APP_DB_USER,
    password: account === 'tool' ? env.SANDBOX_DB_PASSWORD : env.SANDBOX_APP_DB_PASSWORD,
    database: env.SANDBOX_DB_NAME,
    dateStrings: true,
  });
}

export async function one<T = Record<string, unknown>>(
  c: Connection,
  sql: string,
  params: unknown[] = [],
): Promise<T> {
  const [rows] = await c.query(sql, params);
  return (rows as T[])[0]!;
}

export interface ServerState {
  readOnly: string;
  gtidBinlogPos: string;
  gtidSlavePos: string;
  io: string | null;
  sql: string | null;
  masterHost: string | null;
}

/** What the tests compare before and after: read_only, positions, replication threads. */
export async function serverState(c: Connection): Promise<ServerState> {
  const v = await one<{ ro: number; bp: string; sp: string }>(
    c,
    'SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_binlog_pos AS bp, @@GLOBAL.gtid_slave_pos AS sp',
  );
  const [rows] = await c.query('SHOW SLAVE STATUS');
  const s = (rows as Record<string, unknown>[])[0];
  return {
    readOnly: String(v.ro),
    gtidBinlogPos: v.bp,
    gtidSlavePos: v.sp,
    io: s ? String(s.Slave_IO_Running) : null,
    sql: s ? String(s.Slave_SQL_Running) : null,
    masterHost: s ? String(s.Master_Host) : null,
  };
}

/** The sandbox's reset (resetSandbox), or another module with the same export (MYSQL_TEST_RESET_MODULE). */
export async function reset(env: Env): Promise<void> {
  const mod = env.MYSQL_TEST_RESET_MODULE ?? '../../../src/sandbox/index.js';
  const m = (await import(mod)) as { resetSandbox: (env: Env) => Promise<unknown> };
  await m.resetSandbox(env);
}

/** Waits until the replica has applied everything the old server has (for assertions). */
export async function replicaCaughtUp(env: Env, timeoutMs = 10_000): Promise<void> {
  const o = await connect(env, 'old');
  const n = await connect(env, 'new');
  try {
    const { p } = await one<{ p: string }>(o, 'SELECT @@GLOBAL.gtid_binlog_pos AS p');
    const { r } = await one<{ r: number }>(n, 'SELECT MASTER_GTID_WAIT(?, ?) AS r', [p, timeoutMs / 1000]);
    if (Number(r) !== 0) throw new Error(`replica did not reach ${p}`);
  } finally {
    await o.end();
    await n.end();
  }
}
