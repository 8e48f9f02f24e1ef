// The two rehearsal grounds these tests run on: the self-managed sandbox, shaped here the way a
// managed platform shapes its binlog (heartbeat table, replicas ignoring mysql.rds_%, strict mode
// off), and the managed-platform sandbox (`--platform rds`, rdsSandboxEnv), which is all that
// natively. Writes that bypass every fence (an allowlisted privileged account) and extra service
// writes come from root through the socket.
import mysql, { type Connection } from 'mysql2/promise';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rdsSandboxEnv } from '../../setup/sandbox-env.js';
import { testEnv } from './env.js';
import { type Env, one } from './harness.js';

export interface Target {
  name: 'self' | 'managed';
  env: Env | undefined;
}

function rdsEnv(): Env | undefined {
  try {
    return rdsSandboxEnv() as unknown as Env;
  } catch {
    return undefined;
  }
}

export const TARGETS: Target[] = [
  { name: 'self', env: testEnv() },
  { name: 'managed', env: rdsEnv() },
];

export function rootConnection(env: Env, role: 'old' | 'new'): Promise<Connection> {
  return mysql.createConnection({
    socketPath: role === 'old' ? env.SANDBOX_OLD_DB_SOCKET : env.SANDBOX_NEW_DB_SOCKET,
    user: 'root',
    password: '',
    database: env.SANDBOX_DB_NAME,
    dateStrings: true,
  });
}

/** Self sandbox only, per server and outside the binlog: what the managed profile has natively. */
export async function preparePlatform(env: Env): Promise<void> {
  if (env.SANDBOX_PLATFORM === 'rds') return;
  for (const role of ['old', 'new'] as const) {
    const c = await rootConnection(env, role);
    try {
      await c.query('SET SESSION sql_log_bin = 0');
      await c.query(
        'CREATE TABLE IF NOT EXISTS mysql.rds_heartbeat2 (id INT PRIMARY KEY, value BIGINT) ENGINE=InnoDB',
      );
      await c.query('SET GLOBAL gtid_strict_mode = 0');
      // As RDS replicas do: the rdsadmin tables are the server's own, never replicated into.
      const [st] = await c.query('SHOW SLAVE STATUS');
      const running = (st as unknown[]).length > 0;
      if (running) await c.query('STOP SLAVE');
      await c.query("SET GLOBAL replicate_wild_ignore_table = 'mysql.rds\\\\_%'");
      if (running) await c.query('START SLAVE');
    } finally {
      await c.end();
    }
  }
}

export async function restorePlatform(env: Env): Promise<void> {
  if (env.SANDBOX_PLATFORM === 'rds') return;
  for (const role of ['old', 'new'] as const) {
    const c = await rootConnection(env, role);
    await c.query('SET GLOBAL gtid_strict_mode = 1').finally(() => c.end());
  }
}

/** Heartbeat rows into mysql.rds_heartbeat2 + FLUSH BINARY LOGS every `everyMs`, until stopped. */
export function serviceWrites(env: Env, role: 'old' | 'new', everyMs = 50): { stop: () => Promise<number> } {
  let stopped = false;
  let rounds = 0;
  const loop = (async () => {
    const c = await rootConnection(env, role);
    try {
      while (!stopped) {
        await c.query(
          'INSERT INTO mysql.rds_heartbeat2 VALUES (1, UNIX_TIMESTAMP(NOW(6)) * 1000000) ON DUPLICATE KEY UPDATE value = VALUES(value)',
        );
        if (rounds % 2 === 0) await c.query('FLUSH BINARY LOGS');
        rounds++;
        await new Promise((r) => setTimeout(r, everyMs));
      }
    } finally {
      await c.end();
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return rounds;
    },
  };
}

/** A write that bypasses every fence (read_only, account lock): an allowlisted privileged account. */
export async function privilegedWrite(env: Env, role: 'old' | 'new', totalCents: number): Promise<void> {
  const c = await rootConnection(env, role);
  try {
    await c.query("INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, ?, '2024-06-01')", [
      totalCents,
    ]);
  } finally {
    await c.end();
  }
}

/** The sandbox re-seeded with new replicating old by binlog file/position (Using_Gtid = No). */
export async function useFilePosition(env: Env): Promise<void> {
  await resetSandbox(env as unknown as SandboxEnv, { gtid: 'off' });
  await preparePlatform(env);
  const n = await rootConnection(env, 'new');
  try {
    const s = await one<Record<string, string>>(n, 'SHOW SLAVE STATUS');
    if (s.Using_Gtid !== 'No') throw new Error(`Using_Gtid ${s.Using_Gtid}`);
  } finally {
    await n.end();
  }
}

export async function count(c: Connection, totalCents: number): Promise<number> {
  return Number(
    (await one<{ c: number }>(c, 'SELECT COUNT(*) AS c FROM orders WHERE total_cents = ?', [totalCents])).c,
  );
}

/** "ok", "LOCKED" (MariaDB 4151, known to mysql2 under a MySQL name) or the error code. */
export function loginError(x: unknown): string {
  return /locked/i.test(String((x as Error).message)) ? 'LOCKED' : String((x as { code?: string }).code ?? x);
}
