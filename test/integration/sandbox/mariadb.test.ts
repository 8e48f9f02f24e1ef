import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { connect, one } from '../mysql/harness.js';
import { waitFor } from './helpers.js';

const env = sandboxEnv();

describe('sandbox MariaDB servers', () => {
  const conns: Connection[] = [];
  const open = async (server: 'old' | 'new', account: 'tool' | 'app') => {
    const c = await connect(env, server, account);
    conns.push(c);
    return c;
  };

  afterEach(async () => {
    await Promise.all(conns.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  afterAll(() => resetSandbox(env));

  it('runs two distinct servers on two loopback addresses, same port', async () => {
    const [o, n] = await Promise.all([open('old', 'tool'), open('new', 'tool')]);
    const so = await one<{ id: number; v: string }>(o, 'SELECT @@server_id AS id, @@version AS v');
    const sn = await one<{ id: number }>(n, 'SELECT @@server_id AS id');
    expect(so?.id).not.toBe(sn?.id);
    expect(so?.v).toMatch(/MariaDB/);
    expect(env.SANDBOX_OLD_DB_HOST).not.toBe(env.SANDBOX_NEW_DB_HOST);
  });

  it('seeds the demo schema with data on both servers', async () => {
    for (const server of ['old', 'new'] as const) {
      const c = await open(server, 'app');
      const r = await one<{ n: number }>(c, 'SELECT COUNT(*) AS n FROM products');
      expect(Number(r?.n)).toBeGreaterThan(3);
      expect(Number((await one<{ n: number }>(c, 'SELECT COUNT(*) AS n FROM orders'))?.n)).toBeGreaterThan(0);
    }
  });

  it('replicates old → new by GTID with binlog in row format', async () => {
    const [o, n] = await Promise.all([open('old', 'tool'), open('new', 'tool')]);
    const status = await one<Record<string, unknown>>(n, 'SHOW SLAVE STATUS');
    expect(status?.Slave_IO_Running).toBe('Yes');
    expect(status?.Slave_SQL_Running).toBe('Yes');
    expect(status?.Using_Gtid).toBe('Slave_Pos');
    expect(status?.Master_Host).toBe(env.SANDBOX_OLD_DB_HOST);
    expect(Number(status?.Master_Port)).toBe(Number(env.SANDBOX_DB_PORT));
    expect((await one<{ f: string }>(o, 'SELECT @@binlog_format AS f'))?.f).toBe('ROW');
    expect(Number((await one<{ s: number }>(o, 'SELECT @@gtid_strict_mode AS s'))?.s)).toBe(1);

    const sku = `REPL-${Date.now()}`;
    await o.query('INSERT INTO products (sku, name, price_cents, stock) VALUES (?, ?, ?, ?)', [
      sku,
      'replicated',
      100,
      1,
    ]);
    const pos = (await one<{ p: string }>(o, 'SELECT @@gtid_binlog_pos AS p'))?.p;
    expect(Number((await one<{ r: number }>(n, 'SELECT MASTER_GTID_WAIT(?, 5) AS r', [pos]))?.r)).toBe(0);
    expect(await one(n, 'SELECT name FROM products WHERE sku = ?', [sku])).toEqual({ name: 'replicated' });
  });

  it('old is writable, new is read_only, and neither replicates back', async () => {
    const [o, n] = await Promise.all([open('old', 'tool'), open('new', 'tool')]);
    expect(Number((await one<{ r: number }>(o, 'SELECT @@read_only AS r'))?.r)).toBe(0);
    expect(Number((await one<{ r: number }>(n, 'SELECT @@read_only AS r'))?.r)).toBe(1);
    expect(await one(o, 'SHOW SLAVE STATUS')).toBeUndefined();
    const app = await open('new', 'app');
    await expect(
      app.query("UPDATE products SET stock = stock + 1 WHERE sku = 'MUG-001'"),
    ).rejects.toMatchObject({ errno: 1290 });
  });

  it('read_only on old fences the app account (1290) but not the tool account', async () => {
    const tool = await open('old', 'tool');
    const app = await open('old', 'app');
    await tool.query('SET GLOBAL read_only = 1');
    await expect(
      app.query("UPDATE products SET stock = stock - 1 WHERE sku = 'MUG-001'"),
    ).rejects.toMatchObject({ errno: 1290 });
    await tool.query("UPDATE products SET stock = stock - 1 WHERE sku = 'MUG-001'");
    const grants = (await app.query<RowDataPacket[]>('SHOW GRANTS'))[0]
      .map((r) => Object.values(r)[0] as string)
      .join('\n');
    expect(grants).not.toMatch(/SUPER|READ ONLY ADMIN|ALL PRIVILEGES/);
    await tool.query('SET GLOBAL read_only = 0');
    await app.query("UPDATE products SET stock = stock + 1 WHERE sku = 'MUG-001'");
  });

  it('resetSandbox repairs a cutover-shaped mess: flipped roles, diverged data, reverse replication', async () => {
    const [o, n] = await Promise.all([open('old', 'tool'), open('new', 'tool')]);
    await o.query('SET GLOBAL read_only = 1');
    await n.query('STOP SLAVE');
    await n.query('SET GLOBAL read_only = 0');
    await n.query(
      "INSERT INTO products (sku, name, price_cents, stock) VALUES ('ONLY-NEW', 'written after the cutover', 1, 1)",
    );
    await n.query('CREATE DATABASE IF NOT EXISTS cutover_meta');
    await o.query(
      `CHANGE MASTER TO MASTER_HOST='${env.SANDBOX_NEW_DB_HOST}', MASTER_PORT=${env.SANDBOX_DB_PORT}, MASTER_USER='${env.SANDBOX_DB_REPL_USER}', MASTER_PASSWORD='${env.SANDBOX_DB_REPL_PASSWORD}', MASTER_USE_GTID=current_pos`,
    );
    await Promise.all(conns.splice(0).map((c) => c.end()));

    await resetSandbox(env);

    const [o2, n2] = await Promise.all([open('old', 'tool'), open('new', 'tool')]);
    expect(await one(o2, 'SHOW SLAVE STATUS')).toBeUndefined();
    expect(Number((await one<{ r: number }>(o2, 'SELECT @@read_only AS r'))?.r)).toBe(0);
    expect(Number((await one<{ r: number }>(n2, 'SELECT @@read_only AS r'))?.r)).toBe(1);
    expect(await one(n2, "SELECT 1 FROM products WHERE sku = 'ONLY-NEW'")).toBeUndefined();
    expect(await one(n2, "SHOW DATABASES LIKE 'cutover_meta'")).toBeUndefined();
    await o2.query("INSERT INTO products (sku, name, price_cents, stock) VALUES ('AFTER-RESET', 'x', 1, 1)");
    await waitFor('the row on new', async () =>
      one(n2, "SELECT 1 AS ok FROM products WHERE sku = 'AFTER-RESET'"),
    );
    const s = await one<Record<string, unknown>>(n2, 'SHOW SLAVE STATUS');
    expect([s?.Slave_IO_Running, s?.Slave_SQL_Running, Number(s?.Last_SQL_Errno)]).toEqual(['Yes', 'Yes', 0]);
  });
});
