// Drives MySQL step kinds without the CLI (see ../step-harness.ts), the way the engine does: the
// snapshot passed through JSON before apply (as it is journaled), verify only in live mode, undo
// from the JSON snapshot. Also used by bench/mysql-stop.ts.
import type { Connection } from 'mysql2/promise';
import type { AdapterMode } from '../../../src/adapters/adapters.js';
import type { StepKind } from '../../../src/engine/types.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { mysqlKinds } from '../../../src/steps/mysql/index.js';
import { createStepHarness, type Harness, sandboxDatabases, runKind, type StepRun } from '../step-harness.js';

export { sandboxDatabases };
export type { Harness, StepRun };

export type Env = Record<string, string>;

export function createHarness(o: {
  mode: AdapterMode;
  env: Env;
  databases?: Record<string, DatabaseConfig>;
  signal?: AbortSignal;
}): Harness {
  return createStepHarness({
    ...o,
    runId: 'test-run',
    databases: { ...sandboxDatabases(o.env), ...(o.databases ?? {}) },
  });
}

export function kind(name: string): StepKind {
  const k = mysqlKinds.find((x) => x.kind === name);
  if (!k) throw new Error(`no kind ${name}`);
  return k;
}

/** snapshot (journaled) → apply → verify (live only), like the executor; see runKind. */
export function runStep(
  h: Harness,
  kindName: string,
  with_: Record<string, unknown>,
  mode: AdapterMode = h.adapters.mode,
): Promise<StepRun> {
  return runKind(h, kind(kindName), with_, kindName, mode === 'live');
}

/** The error a step run must end with (a test fails when it succeeds instead). */
export async function fails(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  return p.then(
    () => {
      throw new Error('expected the step to fail');
    },
    (e: { code: string; message: string }) => e,
  );
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
/** The env keys a direct connection needs: the sandbox's env file, or the tests' Env. */
type DbEnv = Partial<
  Record<
    | 'SANDBOX_OLD_DB_HOST'
    | 'SANDBOX_NEW_DB_HOST'
    | 'SANDBOX_DB_PORT'
    | 'SANDBOX_DB_NAME'
    | 'SANDBOX_DB_USER'
    | 'SANDBOX_DB_PASSWORD'
    | 'SANDBOX_APP_DB_USER'
    | 'SANDBOX_APP_DB_PASSWORD',
    string
  >
>;

export async function connect(
  env: DbEnv,
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
