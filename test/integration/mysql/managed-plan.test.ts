// `cutover plan` on deliberately broken setups of the managed-platform sandbox (`sandbox up
// --platform rds`: RDS-master tool account, rdsadmin-owned mysql.rds_* procedures). Each problem is
// one line naming the step and exits 1 before anything changes (review C1, C2, M6, M7).
// log_bin cannot be turned off at runtime, so "binlog off on the new side" is played by
// binlog_format=STATEMENT there, which the reverse replication's preflight refuses the same way.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlAdapter } from '../../../src/adapters/mysql.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { runCli } from '../../helpers/cli.js';
import { rdsSandboxEnv } from '../../setup/sandbox-env.js';
import { createHarness, runStep } from './harness.js';

let env: SandboxEnv;
let dir: string;

async function root(socket: string, sql: string): Promise<RowDataPacket[]> {
  const c = await rootConnection(socket);
  try {
    await c.query('SET SESSION sql_log_bin = 0');
    const [rows] = await c.query<RowDataPacket[]>(sql);
    return rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const RUNBOOK = `version: 1
name: managed-broken
databases:
  old: { host: "\${env.SANDBOX_OLD_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  new: { host: "\${env.SANDBOX_NEW_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  repl: { host: 10.255.255.1, port: 3306, user: repl_reverse, password: { env: SANDBOX_DB_PASSWORD } }
steps:
  - { id: marker, kind: mysql.exec, with: { on: old, sql: "CREATE DATABASE IF NOT EXISTS cutover", undo: "DROP DATABASE IF EXISTS cutover" } }
  - { id: drain, kind: mysql.connections.drain, with: { on: old, kill: true, grace: 1s, quiet: "0", allowUsers: [cutover, rdsadmin] } }
  - { id: stop-replication, kind: mysql.replication.stop, with: { source: old, replica: new, timeout: 10s } }
  - { id: reverse-replication, kind: mysql.replication.reverse, with: { source: new, replica: old, replicationAccount: repl } }
`;

beforeAll(async () => {
  env = rdsSandboxEnv();
  dir = mkdtempSync(join(tmpdir(), 'cutover-managed-broken-'));
  writeFileSync(join(dir, 'broken.yaml'), RUNBOOK);
  await resetSandbox(env);
}, 60_000);

afterAll(async () => {
  await root(env.SANDBOX_NEW_DB_SOCKET, 'SET GLOBAL binlog_format = ROW').catch(() => undefined);
  await resetSandbox(env);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const plan = () =>
  runCli(['plan', join(dir, 'broken.yaml'), '--plain', '--runs-dir', join(dir, 'runs')], { env });

const preflightLines = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.includes('error: preflight:'))
    .map((l) => l.replace(/^[\d:.]+ /, ''));

describe('cutover plan on broken managed setups (sandbox --platform rds)', () => {
  it('C2/C1/M7 plan: freeze: read-only, no EXECUTE on rds_kill, STATEMENT binlog and no binlog retention on new: exit 1, one line per step, nothing changed', async () => {
    await root(env.SANDBOX_OLD_DB_SOCKET, "REVOKE EXECUTE ON PROCEDURE mysql.rds_kill FROM 'cutover'@'%'");
    await root(env.SANDBOX_NEW_DB_SOCKET, 'SET GLOBAL binlog_format = STATEMENT');
    await root(
      env.SANDBOX_NEW_DB_SOCKET,
      "UPDATE mysql.rds_configuration SET value = NULL WHERE name = 'binlog retention hours'",
    );
    const before = await root(env.SANDBOX_NEW_DB_SOCKET, 'SHOW SLAVE STATUS');
    const r = await plan();
    expect(r.code).toBe(1);
    const lines = preflightLines(r.stdout);
    expect(lines.map((l) => /^\[([\w-]+)\]/.exec(l)?.[1])).toEqual([
      'drain',
      'stop-replication',
      'reverse-replication',
    ]);
    expect(lines[0]).toContain(
      'cutover cannot run mysql.rds_kill for ending the sessions left after the grace period — GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO cutover',
    );
    expect(lines[1]).toContain('SQL cannot set read_only there, so freeze: read-only cannot freeze it');
    expect(lines[2]).toContain('binlog_format=STATEMENT, old is to replicate from it needs ROW or MIXED');
    expect(lines[2]).toContain("CALL mysql.rds_set_configuration('binlog retention hours', 24) on new");
    expect(r.stdout).toMatch(/plan-failed \(exit 1\)/);
    // Nothing changed: no schema created, replication as it was.
    expect(await root(env.SANDBOX_OLD_DB_SOCKET, "SHOW DATABASES LIKE 'cutover'")).toEqual([]);
    const after = await root(env.SANDBOX_NEW_DB_SOCKET, 'SHOW SLAVE STATUS');
    expect(after[0]?.Slave_SQL_Running).toBe(before[0]?.Slave_SQL_Running);
    expect(after[0]?.Slave_IO_Running).toBe('Yes');
  });

  it('C1: with EXECUTE on rds_kill back, the drain passes preflight; a plain KILL is still refused', async () => {
    await root(env.SANDBOX_OLD_DB_SOCKET, "GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO 'cutover'@'%'");
    const r = await plan();
    expect(r.code).toBe(1);
    expect(preflightLines(r.stdout).some((l) => l.startsWith('[drain]'))).toBe(false);
    const mysql = await import('mysql2/promise');
    const tool = await mysql.createConnection({
      host: env.SANDBOX_OLD_DB_HOST,
      port: Number(env.SANDBOX_DB_PORT),
      user: env.SANDBOX_DB_USER,
      password: env.SANDBOX_DB_PASSWORD,
    });
    const app = await mysql.createConnection({
      host: env.SANDBOX_OLD_DB_HOST,
      port: Number(env.SANDBOX_DB_PORT),
      user: env.SANDBOX_APP_DB_USER,
      password: env.SANDBOX_APP_DB_PASSWORD,
    });
    try {
      const [[row]] = (await app.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      const refused = await tool.query(`KILL CONNECTION ${row.id}`).then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      );
      expect(refused).toBe('ER_KILL_DENIED_ERROR');
    } finally {
      await tool.end();
      await app.end();
    }
  });

  it('C1: drain ends sessions with mysql.rds_kill on the managed sandbox (--platform rds)', async () => {
    await resetSandbox(env);
    const mysql = await import('mysql2/promise');
    const app = await mysql.createConnection({
      host: env.SANDBOX_OLD_DB_HOST,
      port: Number(env.SANDBOX_DB_PORT),
      user: env.SANDBOX_APP_DB_USER,
      password: env.SANDBOX_APP_DB_PASSWORD,
    });
    app.on('error', () => {});
    const h = createHarness({ mode: 'live', env: env as unknown as Record<string, string> });
    try {
      const run = await runStep(h, 'mysql.connections.drain', {
        on: 'old',
        allowUsers: [env.SANDBOX_DB_USER],
        kill: true,
        grace: '200ms',
        quiet: '0',
      });
      expect(run.outputs.killed).toBe(1);
      expect(h.stats.writes['mysql.kill']).toBe(1);
      // The only way it can have ended the session: KILL is refused to this account (test above).
      expect((await h.adapters.use(mysqlAdapter, 'old')).sql.kill(1)).toBe('CALL mysql.rds_kill(1)');
      const gone = await app.query('SELECT 1').then(
        () => 'alive',
        () => 'gone',
      );
      expect(gone).toBe('gone');
    } finally {
      await h.close();
      await app.end().catch(() => undefined);
    }
  });
});
