import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDatabaseReachable, mysqlAdapter } from '../../../src/adapters/mysql.js';
import { ExitCode } from '../../../src/errors.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { testEnv } from './env.js';
import { connect, createHarness, one, runStep, sandboxDatabases } from './harness.js';

const env = testEnv();

async function failure(
  dbs: Record<string, DatabaseConfig>,
  mode: 'live' | 'dry',
  kindName: string,
  params: Record<string, unknown>,
) {
  const h = createHarness({ mode, env: env!, databases: dbs });
  return runStep(h, kindName, params)
    .finally(() => h.close())
    .then(
      () => {
        throw new Error('expected a failure');
      },
      (e: { code: string; message: string }) => e,
    );
}

describe.skipIf(!env)(
  'connection and privilege errors: one line, naming the database and what to check',
  () => {
    const e = env!;
    const base = sandboxDatabases(e).old!;
    let silent: Server;
    let silentPort = 0;

    beforeAll(async () => {
      // Accepts TCP connections and never speaks: a connect that times out, on loopback.
      silent = createServer(() => {});
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      silentPort = (silent.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((r) => silent.close(() => r())));

    it('wrong password', async () => {
      const secret = 'not-the-password-42';
      const err = await failure({ old: { ...base, password: secret } }, 'dry', 'mysql.read-only', {
        on: 'old',
      });
      expect(err.code).toBe('DB_ACCESS_DENIED');
      expect(err.message).toBe(
        `database "old" (${base.host}:${base.port}): access denied for user ${base.user} — check the password reference`,
      );
      expect(err.message).not.toContain(secret);
    });

    it("a locked account (a freeze or fence left in place): said as such, not as MariaDB's errno read as MySQL's", async () => {
      const root = await rootConnection(e.SANDBOX_OLD_DB_SOCKET!);
      try {
        await root.query('SET SESSION sql_log_bin = 0');
        await root.query(
          "CREATE OR REPLACE USER 'locked_probe'@'%' IDENTIFIED BY 'locked-probe-pass' ACCOUNT LOCK",
        );
        const err = await failure(
          { old: { ...base, user: 'locked_probe', password: 'locked-probe-pass' } },
          'dry',
          'mysql.connections',
          { on: 'old' },
        );
        expect(err.code).toBe('DB_ACCOUNT_LOCKED');
        expect(err.message).toMatch(
          /: account locked_probe is locked \(ACCOUNT LOCK\) .*cutover status --last/,
        );
        expect(err.message).not.toMatch(/BULK_PARSER/);
      } finally {
        await root.query("DROP USER IF EXISTS 'locked_probe'@'%'");
        await root.end();
      }
    });

    it('unreachable host: refused, and no answer', async () => {
      const refused = await failure(
        { old: { ...base, host: '127.0.0.1', port: 1 } },
        'dry',
        'mysql.connections',
        { on: 'old' },
      );
      expect(refused.code).toBe('DB_UNREACHABLE');
      expect(refused.message).toBe(
        'database "old" (127.0.0.1:1): connection refused — check the host and port, and that the server is running',
      );
      const t0 = Date.now();
      const silentErr = await failure(
        { old: { ...base, host: '127.0.0.1', port: silentPort, connectTimeoutMs: 500 } },
        'dry',
        'mysql.connections',
        { on: 'old' },
      );
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(silentErr.code).toBe('DB_UNREACHABLE');
      expect(silentErr.message).toBe(
        `database "old" (127.0.0.1:${silentPort}): no answer within 500ms — check the host and port, security groups and firewalls`,
      );
    });

    it('missing privileges name the privilege, in plan and in a live run, before anything changes', async () => {
      const asApp = { old: { ...base, user: e.SANDBOX_APP_DB_USER!, password: e.SANDBOX_APP_DB_PASSWORD! } };
      for (const mode of ['dry', 'live'] as const) {
        const err = await failure(asApp, mode, 'mysql.read-only', { on: 'old' });
        expect(err.code).toBe('DB_PRIVILEGE_MISSING');
        expect(err.message).toBe(
          `database "old" (${base.host}:${base.port}): missing privilege READ_ONLY ADMIN (or SUPER) for SET GLOBAL read_only — GRANT READ_ONLY ADMIN ON *.* TO ${e.SANDBOX_APP_DB_USER}`,
        );
      }
      const drain = await failure(asApp, 'dry', 'mysql.connections.drain', { on: 'old' });
      expect(drain.message).toMatch(
        /: missing privilege PROCESS for seeing other accounts’ sessions \(without it they would look drained\) — GRANT PROCESS ON \*\.\* TO app$/,
      );
      const o = await connect(e, 'old');
      expect((await one<{ ro: number }>(o, 'SELECT @@read_only AS ro')).ro).toBe(0);
      await o.end();
    });

    it('a connection ended by the server (KILL, wait_timeout) is reopened on next use, and the tool never lists itself', async () => {
      const h = createHarness({ mode: 'live', env: e });
      try {
        const a = await h.adapters.use(mysqlAdapter, 'old');
        const first = a.connectionId();
        expect((await a.sessions()).map((x) => x.id)).not.toContain(first);
        const o = await connect(e, 'old');
        await o.query(`KILL CONNECTION ${first}`);
        await o.end();
        await new Promise((r) => setTimeout(r, 200));
        expect(await a.query('SELECT 1 AS x')).toEqual([{ x: 1 }]);
        expect(a.connectionId()).not.toBe(first);
        expect((await a.sessions()).map((x) => x.id)).not.toContain(a.connectionId());
        expect(a.flavor).toMatchObject({ vendor: 'mariadb', platform: 'self-managed' });
        expect(a.sql.replicaStatus).toBe('SHOW REPLICA STATUS');
      } finally {
        await h.close();
      }
    });

    it('checkDatabaseReachable: the same lines as bad input (exit 2) for plan', async () => {
      await expect(checkDatabaseReachable(base)).resolves.toBeUndefined();
      const wrong = await checkDatabaseReachable({ ...base, password: 'nope-nope' }).catch(
        (x: { exitCode: number; code: string; message: string }) => x,
      );
      expect(wrong).toMatchObject({ exitCode: ExitCode.badInput, code: 'DB_ACCESS_DENIED' });
      const priv = await checkDatabaseReachable(
        { ...base, user: e.SANDBOX_APP_DB_USER!, password: e.SANDBOX_APP_DB_PASSWORD! },
        { needs: [{ need: 'set-read-only', doing: 'freezing old' }] },
      ).catch((x: { exitCode: number; code: string; message: string }) => x);
      expect(priv).toMatchObject({ exitCode: ExitCode.badInput, code: 'DB_PRIVILEGE_MISSING' });
      expect((priv as { message: string }).message).toContain(
        'missing privilege READ_ONLY ADMIN (or SUPER) for freezing old',
      );
    });
  },
);
