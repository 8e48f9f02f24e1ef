// The managed-platform sandbox (`sandbox up --platform rds`) must refuse what RDS refuses, with
// MariaDB's own privilege checks, and offer what RDS offers instead (mysql.rds_* procedures), while
// an rdsadmin heartbeat writes and rotates binlogs in the background.
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../../../src/adapters/mysql.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { sleep } from '../../../src/util/sleep.js';
import { rdsSandboxEnv } from '../../setup/sandbox-env.js';
import { sandboxDatabases } from '../step-harness.js';

const env = rdsSandboxEnv();
const noop = () => {};

function connect(host: string, user: string, password: string): Promise<Connection> {
  return mysql.createConnection({ host, port: Number(env.SANDBOX_DB_PORT), user, password });
}
const tool = (host: string) => connect(host, env.SANDBOX_DB_USER, env.SANDBOX_DB_PASSWORD);
async function rows(c: Connection, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const [r] = await c.query<RowDataPacket[]>(sql, params);
  return r as Record<string, unknown>[];
}
async function errno(p: Promise<unknown>): Promise<number | undefined> {
  return p.then(
    () => undefined,
    (e: { errno?: number }) => e.errno,
  );
}
async function replicaStatus(c: Connection): Promise<Record<string, unknown>> {
  const [sets] = await c.query<RowDataPacket[][]>('CALL mysql.rds_replica_status');
  return (sets[0] ?? [])[0] as Record<string, unknown>;
}

describe('managed-platform sandbox (--platform rds)', () => {
  let oldC: Connection;
  let newC: Connection;
  beforeAll(async () => {
    await resetSandbox(env);
    [oldC, newC] = await Promise.all([tool(env.SANDBOX_OLD_DB_HOST), tool(env.SANDBOX_NEW_DB_HOST)]);
  });
  afterAll(async () => {
    await Promise.all([oldC?.end(), newC?.end()]);
  });

  it('the tool detects RDS from the server alone and takes the procedure statements', async () => {
    const a = await connectMysql(sandboxDatabases(env).old!, 'dry', {
      countRead: noop,
      countWrite: noop,
      record: noop,
    });
    try {
      expect(a.flavor.platform).toBe('rds');
      expect(a.flavor.vendor).toBe('mariadb');
      expect(a.sql.stopReplica).toBe('CALL mysql.rds_stop_replication');
      expect(a.sql.replicaStatus).toBe('CALL mysql.rds_replica_status');
    } finally {
      await a.close();
    }
  });

  it('refuses a plain KILL, SET GLOBAL read_only, STOP SLAVE and SHOW SLAVE STATUS to the tool account', async () => {
    const app = await connect(env.SANDBOX_OLD_DB_HOST, env.SANDBOX_APP_DB_USER, env.SANDBOX_APP_DB_PASSWORD);
    try {
      const [{ id }] = (await rows(app, 'SELECT CONNECTION_ID() AS id')) as [{ id: number }];
      expect(await errno(oldC.query(`KILL CONNECTION ${id}`))).toBe(1095); // ER_KILL_DENIED_ERROR
      expect(await errno(oldC.query('SET GLOBAL read_only = 1'))).toBe(1227); // ER_SPECIFIC_ACCESS_DENIED
      expect(await errno(newC.query('STOP SLAVE'))).toBe(1227);
      expect(await errno(newC.query('SHOW SLAVE STATUS'))).toBe(1227);
      expect((await rows(oldC, 'SELECT @@GLOBAL.read_only AS ro'))[0]!.ro).toBe(0);
      // What RDS offers instead ends the session.
      await oldC.query('CALL mysql.rds_kill(?)', [id]);
      const alive = async () =>
        (await rows(oldC, 'SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?', [id])).length;
      for (let i = 0; i < 100 && (await alive()); i++) await sleep(20);
      expect(await alive()).toBe(0);
    } finally {
      app.destroy();
    }
  });

  it('drives replication only through the rds_* procedures, which record what they did (binlogged)', async () => {
    const before = (await rows(newC, 'SELECT @@GLOBAL.gtid_binlog_state AS s'))[0]!.s as string;
    await newC.query('CALL mysql.rds_stop_replication');
    expect((await replicaStatus(newC)).Slave_SQL_Running).toBe('No');
    const history = await rows(newC, "SELECT action FROM mysql.rds_history WHERE action = 'stop slave'");
    expect(history.length).toBeGreaterThan(0);
    // The procedure's own bookkeeping is a transaction of the replica's own server id (review M10).
    const after = (await rows(newC, 'SELECT @@GLOBAL.gtid_binlog_state AS s'))[0]!.s as string;
    expect(after).not.toBe(before);
    expect(after).toMatch(/\b0-2-\d+/);
    await newC.query('CALL mysql.rds_start_replication');
    for (let i = 0; i < 100 && (await replicaStatus(newC)).Slave_IO_Running !== 'Yes'; i++) await sleep(50);
    expect((await replicaStatus(newC)).Slave_IO_Running).toBe('Yes');
  });

  it('rdsadmin heartbeats the primary and rotates every binary log while nothing else writes', async () => {
    const logs = async (c: Connection) => (await rows(c, 'SHOW BINARY LOGS')).length;
    const gtid = async (c: Connection) =>
      (await rows(c, 'SELECT @@GLOBAL.gtid_binlog_pos AS g'))[0]!.g as string;
    const [oldLogs, newLogs, oldGtid] = await Promise.all([logs(oldC), logs(newC), gtid(oldC)]);
    await sleep(Number(env.SANDBOX_RDS_HEARTBEAT_SECONDS) * 1000 * 2 + 500);
    expect(await logs(oldC)).toBeGreaterThan(oldLogs);
    expect(await logs(newC)).toBeGreaterThan(newLogs);
    expect(await gtid(oldC)).not.toBe(oldGtid);
    const hb = await rows(oldC, 'SELECT value FROM mysql.rds_heartbeat2');
    expect(Number(hb[0]!.value)).toBeGreaterThan(Date.now() - 60_000);
    // Replicas filter mysql.rds_% like RDS does: the heartbeat table stays empty on new.
    expect(await rows(newC, 'SELECT value FROM mysql.rds_heartbeat2')).toEqual([]);
  });

  it('--gtid off: new follows old by binlog file and position', async () => {
    await resetSandbox(env, { gtid: 'off' });
    try {
      const [o, n] = await Promise.all([tool(env.SANDBOX_OLD_DB_HOST), tool(env.SANDBOX_NEW_DB_HOST)]);
      try {
        const st = await replicaStatus(n);
        expect(st.Using_Gtid).toBe('No');
        await o.query(
          "INSERT INTO shop.customers (email, name, created_at) VALUES ('pos@example.com', 'Pos', NOW())",
        );
        let seen: Record<string, unknown>[] = [];
        for (let i = 0; i < 100 && !seen.length; i++) {
          seen = await rows(n, "SELECT id FROM shop.customers WHERE email = 'pos@example.com'");
          if (!seen.length) await sleep(50);
        }
        expect(seen).toHaveLength(1);
      } finally {
        await Promise.all([o.end(), n.end()]);
      }
    } finally {
      await resetSandbox(env);
    }
  });
});
