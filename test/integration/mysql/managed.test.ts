// The mysql kinds on a server shaped like RDS for MariaDB (./managed.ts): the master user cannot
// KILL or SET GLOBAL read_only, runs mysql.rds_* procedures by per-procedure EXECUTE. Review
// findings C1, C2, M6, M7, M9a, m5 against a real MariaDB enforcing it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MysqlAdapter, mysqlAdapter } from '../../../src/adapters/mysql.js';
import { preflightDatabases } from '../../../src/preflight.js';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { runSession } from '../../../src/session.js';
import { runCli } from '../../helpers/cli.js';
import { killSession } from '../../../src/steps/mysql/common.js';
import { testEnv } from './env.js';
import { connect, createHarness, type Env, fails, kind, one, reset, runStep } from './harness.js';
import {
  asRoot,
  grantProcedures,
  installManaged,
  MANAGED_PASSWORD,
  MANAGED_USER,
  managedDatabases,
  RDS_PROCEDURES,
  removeManaged,
} from './managed.js';

const env = testEnv();

async function rawAs(e: Env, role: 'old' | 'new') {
  const mysql = await import('mysql2/promise');
  return mysql.createConnection({
    host: role === 'old' ? e.SANDBOX_OLD_DB_HOST : e.SANDBOX_NEW_DB_HOST,
    port: Number(e.SANDBOX_DB_PORT),
    user: MANAGED_USER,
    password: MANAGED_PASSWORD,
  });
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (x: { code?: string }) => x.code,
  );

describe.skipIf(!env)('M7 roles (self-managed MariaDB)', () => {
  const e = env!;
  beforeAll(() => reset(e), 60_000);
  afterAll(async () => {
    await asRoot(e, 'old', "DROP USER IF EXISTS 'roled'@'%'");
    await asRoot(e, 'old', 'DROP ROLE IF EXISTS session_watcher');
  });

  it('M7: a role-holding account is judged by what its active role grants, not "unknowable"', async () => {
    await asRoot(e, 'old', "DROP USER IF EXISTS 'roled'@'%'");
    await asRoot(e, 'old', 'DROP ROLE IF EXISTS session_watcher');
    await asRoot(e, 'old', 'CREATE ROLE session_watcher');
    await asRoot(e, 'old', 'GRANT PROCESS ON *.* TO session_watcher');
    await asRoot(e, 'old', "CREATE USER 'roled'@'%' IDENTIFIED BY 'roled-pw'");
    await asRoot(e, 'old', "GRANT session_watcher TO 'roled'@'%'");
    await asRoot(e, 'old', "SET DEFAULT ROLE session_watcher FOR 'roled'@'%'");
    const { database: _schema, ...base } = managedDatabases(e).old!;
    const h = createHarness({
      mode: 'dry',
      env: e,
      databases: { old: { ...base, user: 'roled', password: 'roled-pw' } },
    });
    try {
      const a = await h.adapters.use(mysqlAdapter, 'old');
      const g = await a.grants();
      expect(g.hasRoles).toBe(false);
      expect(g.roles).toEqual(['session_watcher']);
      // PROCESS comes from the role; CONNECTION ADMIN comes from nowhere: certain now.
      await expect(a.requirePrivilege('see-all-sessions', 'listing sessions')).resolves.toBeUndefined();
      const err = await fails(a.requirePrivilege('kill-others', 'ending sessions'));
      expect(err.message).toMatch(
        /missing privilege CONNECTION ADMIN \(or SUPER\) for ending sessions — GRANT CONNECTION ADMIN ON \*\.\* TO roled$/,
      );
    } finally {
      await h.close();
    }
  });
});

describe.skipIf(!env)('RDS-shaped MariaDB: the master user and mysql.rds_* procedures', () => {
  const e = env!;
  const dbs = () => managedDatabases(e);
  const harness = (mode: 'live' | 'dry' = 'live') => createHarness({ mode, env: e, databases: dbs() });
  const preflight = async (kindName: string, params: Record<string, unknown>) => {
    const h = harness('dry');
    try {
      const k = kind(kindName);
      const parsed = k.params.parse(params);
      await k.preflight!(h.ctx(kindName), parsed);
      return { code: 'ok', message: '', warnings: h.warnings };
    } catch (x) {
      const err = x as { code: string; message: string };
      return { code: err.code, message: err.message, warnings: h.warnings };
    } finally {
      await h.close();
    }
  };
  // What each test reads is set up here; a test that changes more puts it back itself.
  beforeAll(async () => {
    await reset(e);
    await installManaged(e);
  }, 60_000);
  beforeEach(async () => {
    await grantProcedures(e, RDS_PROCEDURES);
  });
  afterAll(async () => {
    await removeManaged(e);
    await reset(e);
  }, 60_000);

  it('C1: the probe classifies the server as RDS MariaDB, also with EXECUTE on one procedure only', async () => {
    await grantProcedures(e, ['rds_kill']);
    const h = harness('dry');
    try {
      const a = await h.adapters.use(mysqlAdapter, 'old');
      expect(a.flavor).toMatchObject({ vendor: 'mariadb', platform: 'rds' });
      expect(a.flavor.procedures).toContain('rds_kill');
      expect(a.sql.kill(7)).toBe('CALL mysql.rds_kill(7)');
      expect(a.sql.replicaStatus).toBe('CALL mysql.rds_replica_status');
    } finally {
      await h.close();
    }
  });

  it('C1: a dedicated account with PROCESS and EXECUTE on mysql.rds_kill only still sees RDS, and may drain with kill', async () => {
    for (const role of ['old', 'new'] as const) {
      await asRoot(e, role, "DROP USER IF EXISTS 'drainer'@'%'");
      await asRoot(e, role, "CREATE USER 'drainer'@'%' IDENTIFIED BY 'drainer-pw'");
      await asRoot(e, role, "GRANT PROCESS, BINLOG MONITOR ON *.* TO 'drainer'@'%'");
      await asRoot(e, role, "GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO 'drainer'@'%'");
    }
    const { database: _schema, ...base } = dbs().old!;
    const h = createHarness({
      mode: 'dry',
      env: e,
      databases: { old: { ...base, user: 'drainer', password: 'drainer-pw' } },
    });
    try {
      const a = await h.adapters.use(mysqlAdapter, 'old');
      // information_schema.ROUTINES shows the routines the account holds a privilege on.
      expect(a.flavor).toMatchObject({ vendor: 'mariadb', platform: 'rds', procedures: ['rds_kill'] });
      const k = kind('mysql.connections.drain');
      await expect(
        k.preflight!(h.ctx('drain'), k.params.parse({ on: 'old', kill: true })),
      ).resolves.toBeUndefined();
      const stop = kind('mysql.replication.stop');
      const err = await fails(
        stop.preflight!(
          h.ctx('stop'),
          stop.params.parse({ source: 'old', replica: 'old', freeze: 'none', makeWritable: false }),
        ),
      );
      expect(err.message).toContain(
        'drainer cannot run mysql.rds_stop_replication, mysql.rds_start_replication, mysql.rds_replica_status',
      );
    } finally {
      await h.close();
      for (const role of ['old', 'new'] as const) await asRoot(e, role, "DROP USER IF EXISTS 'drainer'@'%'");
    }
  });

  it('C1: a plain KILL and SET GLOBAL read_only are refused for the managed tool account', async () => {
    const app = await connect(e, 'old', 'app');
    const master = await rawAs(e, 'old');
    try {
      const appId = (await one<{ id: number }>(app, 'SELECT CONNECTION_ID() AS id')).id;
      expect(await code(master.query(`KILL CONNECTION ${appId}`))).toBe('ER_KILL_DENIED_ERROR');
      expect(await code(master.query('SET GLOBAL read_only = 1'))).toBe('ER_SPECIFIC_ACCESS_DENIED_ERROR');
      expect(await one(app, 'SELECT 1 AS x')).toEqual({ x: 1 });
    } finally {
      await app.end().catch(() => undefined);
      await master.end();
    }
  });

  it('C1: drain ends sessions with mysql.rds_kill on the managed platform', async () => {
    const app = await connect(e, 'old', 'app');
    try {
      const dry = harness('dry');
      await runStep(dry, 'mysql.connections.drain', {
        on: 'old',
        allowUsers: [MANAGED_USER, e.SANDBOX_DB_USER],
        kill: true,
        grace: '200ms',
        quiet: '0',
      }).finally(() => dry.close());
      expect(dry.planLines().join('\n')).toMatch(/CALL mysql\.rds_kill: connection \d+ \(app@/);
      const h = harness('live');
      const run = await runStep(h, 'mysql.connections.drain', {
        on: 'old',
        allowUsers: [MANAGED_USER, e.SANDBOX_DB_USER],
        kill: true,
        grace: '200ms',
        quiet: '0',
      }).finally(() => h.close());
      expect(run.outputs.killed).toBe(1);
      expect(await code(app.query('SELECT 1'))).not.toBe('ok');
    } finally {
      await app.end().catch(() => undefined);
    }
  });

  it('C1: without EXECUTE on rds_kill, killing fails naming the grant; with CONNECTION ADMIN held directly, KILL is the fallback', async () => {
    await grantProcedures(e, ['rds_replica_status']);
    const app = await connect(e, 'old', 'app');
    const h = harness('live');
    try {
      const a: MysqlAdapter = await h.adapters.use(mysqlAdapter, 'old');
      const appId = (await one<{ id: number }>(app, 'SELECT CONNECTION_ID() AS id')).id;
      const err = await fails(killSession(a, { id: appId, who: 'app', reason: 'test' }));
      expect(err.message).toContain(
        `missing privilege EXECUTE on mysql.rds_kill (kill) — GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO ${MANAGED_USER}`,
      );
      const pre = await preflight('mysql.connections.drain', { on: 'old', kill: true });
      expect(pre.code).toBe('PREFLIGHT_FAILED');
      expect(pre.message).toContain(
        `${MANAGED_USER} cannot run mysql.rds_kill for ending the sessions left after the grace period — GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO ${MANAGED_USER}`,
      );
      // Aurora's master holds CONNECTION_ADMIN itself: KILL works, and preflight knows it.
      await asRoot(e, 'old', `GRANT CONNECTION ADMIN ON *.* TO '${MANAGED_USER}'@'%'`);
      const h2 = harness('live');
      try {
        const a2 = await h2.adapters.use(mysqlAdapter, 'old');
        expect(await killSession(a2, { id: appId, who: 'app', reason: 'test' })).toBe(true);
      } finally {
        await h2.close();
      }
      expect((await preflight('mysql.connections.drain', { on: 'old', kill: true })).code).toBe('ok');
    } finally {
      await asRoot(e, 'old', `REVOKE CONNECTION ADMIN ON *.* FROM '${MANAGED_USER}'@'%'`);
      await h.close();
      await app.end().catch(() => undefined);
    }
  });

  it('M6: preflight names every rds_* procedure each step will call, with step server and grant', async () => {
    await grantProcedures(e, ['rds_kill']);
    const stop = await preflight('mysql.replication.stop', {
      source: 'old',
      replica: 'new',
      freeze: 'none',
      makeWritable: false,
    });
    expect(stop.code).toBe('PREFLIGHT_FAILED');
    expect(stop.message).toContain(
      `database "new" (${e.SANDBOX_NEW_DB_HOST}:${e.SANDBOX_DB_PORT}): ${MANAGED_USER} cannot run mysql.rds_stop_replication, mysql.rds_start_replication, mysql.rds_replica_status for stopping replication on new (and restarting it on undo) — GRANT EXECUTE ON PROCEDURE mysql.rds_stop_replication TO ${MANAGED_USER}`,
    );
    const rev = await preflight('mysql.replication.reverse', {
      source: 'new',
      replica: 'old',
      replicationAccount: 'new',
    });
    expect(rev.message).toContain(
      `database "old" (${e.SANDBOX_OLD_DB_HOST}:${e.SANDBOX_DB_PORT}): ${MANAGED_USER} cannot run mysql.rds_set_external_master_gtid, mysql.rds_start_replication, mysql.rds_stop_replication, mysql.rds_reset_external_master, mysql.rds_replica_status for configuring replication on old from new`,
    );
    await grantProcedures(e, RDS_PROCEDURES);
    const ok = await preflight('mysql.replication.stop', {
      source: 'old',
      replica: 'new',
      freeze: 'none',
      makeWritable: false,
    });
    expect(ok.code).toBe('ok');
  });

  it('C2: freeze: read-only on a managed source is refused at preflight; account-lock needs CREATE USER, which the master has', async () => {
    const r = await preflight('mysql.replication.stop', {
      source: 'old',
      replica: 'new',
      makeWritable: false,
    });
    expect(r.code).toBe('PREFLIGHT_FAILED');
    expect(r.message).toContain(
      `database "old" (${e.SANDBOX_OLD_DB_HOST}:${e.SANDBOX_DB_PORT}) is MariaDB 10.11.`,
    );
    expect(r.message).toContain(
      ': SQL cannot set read_only there, so freeze: read-only cannot freeze it — use freeze: account-lock',
    );
    // The other helper's freeze: account-lock (ALTER USER ... ACCOUNT LOCK) passes on the platform.
    const k = kind('mysql.replication.stop');
    const h = harness('dry');
    try {
      const parsed = { ...k.params.parse({ source: 'old', replica: 'new', makeWritable: false }) };
      await expect(
        k.preflight!(h.ctx('stop'), { ...(parsed as object), freeze: 'account-lock' }),
      ).resolves.toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it('M9a: the replica left read_only=ON on a managed platform is refused at preflight, not in the window', async () => {
    // The sandbox's new server runs read_only=ON, as a replica does.
    const r = await preflight('mysql.replication.stop', { source: 'old', replica: 'new', freeze: 'none' });
    expect(r.code).toBe('PREFLIGHT_FAILED');
    expect(r.message).toMatch(
      /database "new" \(.+\) is MariaDB 10\.11\.\d+ \(RDS\) with read_only=ON, which SQL cannot change — set read_only=0 in its parameter group before the cutover/,
    );
  });

  it('M7: binlog_format STATEMENT on the source and unset binlog retention on the reverse source are named', async () => {
    await asRoot(e, 'old', 'SET GLOBAL binlog_format = STATEMENT');
    try {
      const stop = await preflight('mysql.replication.stop', {
        source: 'old',
        replica: 'new',
        freeze: 'none',
        makeWritable: false,
      });
      expect(stop.message).toContain(
        'binlog_format=STATEMENT, new replicates from it needs ROW or MIXED (statement-based events replay @@server_id and NOW() on the other side) — set binlog_format=ROW',
      );
      expect(stop.warnings.join('\n')).toContain(
        'binlog retention is not set (mysql.rds_show_configuration)',
      );
    } finally {
      await asRoot(e, 'old', 'SET GLOBAL binlog_format = ROW');
    }
    const rev = await preflight('mysql.replication.reverse', {
      source: 'new',
      replica: 'old',
      replicationAccount: 'new',
    });
    expect(rev.message).toContain(
      "binlog retention is not set (mysql.rds_show_configuration): binlogs go once backed up, before old may have read them — CALL mysql.rds_set_configuration('binlog retention hours', 24) on new",
    );
    const master = await rawAs(e, 'new');
    try {
      await master.query("CALL mysql.rds_set_configuration('binlog retention hours', '24')");
    } finally {
      await master.end();
    }
    // Retention set: that problem is gone (the kind's own checks may name others, e.g. its undo's fence).
    const again = await preflight('mysql.replication.reverse', {
      source: 'new',
      replica: 'old',
      replicationAccount: 'new',
    });
    expect(again.message).not.toContain('binlog retention');
  });

  describe('cutover plan on broken managed setups', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'cutover-managed-plan-'));
      Object.assign(process.env, e, {
        RDS_MASTER_PASSWORD: MANAGED_PASSWORD,
        UNREACHABLE_REPL_PASSWORD: 'wrong-pw',
      });
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const runbook = (steps: string) => {
      const f = join(dir, `plan-${Date.now()}.yaml`);
      writeFileSync(
        f,
        `version: 1
name: managed-plan
databases:
  old: { host: "\${env.SANDBOX_OLD_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: ${MANAGED_USER}, password: { env: RDS_MASTER_PASSWORD } }
  new: { host: "\${env.SANDBOX_NEW_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: ${MANAGED_USER}, password: { env: RDS_MASTER_PASSWORD } }
  repl: { host: 10.255.255.1, port: 3306, user: repl_reverse, password: { env: UNREACHABLE_REPL_PASSWORD }, connectTimeout: 500ms }
steps:
${steps}`,
      );
      return f;
    };

    it('M7 plan: drain without rds_kill, the template freeze: read-only and STATEMENT binlog on new each exit 1 before any change, naming step and problem', async () => {
      await grantProcedures(
        e,
        RDS_PROCEDURES.filter((p) => p !== 'rds_kill'),
      );
      await asRoot(e, 'new', 'SET GLOBAL binlog_format = STATEMENT');
      await asRoot(e, 'new', "UPDATE mysql.rds_configuration SET value = '24'");
      const app = await connect(e, 'old', 'app');
      const events: { type: string; level?: string; stepId?: string; message?: string }[] = [];
      try {
        const f =
          runbook(`  - { id: marker, kind: mysql.exec, with: { on: old, sql: "CREATE DATABASE IF NOT EXISTS cutover", undo: "DROP DATABASE IF EXISTS cutover" } }
  - { id: drain, kind: mysql.connections.drain, with: { on: old, kill: true, grace: 1s, quiet: "0", allowUsers: [${MANAGED_USER}, ${e.SANDBOX_DB_USER}] } }
  - { id: stop-replication, kind: mysql.replication.stop, with: { source: old, replica: new } }
  - { id: reverse, kind: mysql.replication.reverse, with: { source: new, replica: old, replicationAccount: repl } }
`);
        const result = await runSession(
          { mode: 'plan', file: f },
          { runsDir: join(dir, 'runs'), render: 'silent', onEvent: (ev) => events.push(ev as never) },
        );
        expect(result.exitCode).toBe(1);
        const errors = events.filter((ev) => ev.type === 'log' && ev.level === 'error');
        expect(errors.map((x) => x.stepId)).toEqual(['drain', 'stop-replication', 'reverse']);
        const text = (id: string) => errors.find((x) => x.stepId === id)!.message!;
        expect(text('drain')).toContain('cannot run mysql.rds_kill');
        expect(text('stop-replication')).toContain('freeze: read-only cannot freeze it');
        expect(text('stop-replication')).toContain('read_only=ON, which SQL cannot change');
        expect(text('reverse')).toContain(
          'binlog_format=STATEMENT, old is to replicate from it needs ROW or MIXED',
        );
        // Nothing changed: the app session lives, replication runs, new is still read-only.
        expect(await one(app, 'SELECT 1 AS x')).toEqual({ x: 1 });
        const n = await connect(e, 'new');
        try {
          expect((await one<{ ro: number }>(n, 'SELECT @@read_only AS ro')).ro).toBe(1);
        } finally {
          await n.end();
        }
      } finally {
        await app.end().catch(() => undefined);
        await asRoot(e, 'new', 'SET GLOBAL binlog_format = ROW');
        await asRoot(e, 'new', 'UPDATE mysql.rds_configuration SET value = NULL');
      }
    });

    it('M7 plan (CLI): `cutover plan` prints one line per refused step and exits 1', async () => {
      await grantProcedures(
        e,
        RDS_PROCEDURES.filter((p) => p !== 'rds_kill'),
      );
      const f =
        runbook(`  - { id: drain, kind: mysql.connections.drain, with: { on: old, kill: true, quiet: "0" } }
  - { id: stop-replication, kind: mysql.replication.stop, with: { source: old, replica: new, makeWritable: false } }
`);
      const r = await runCli(['plan', f, '--plain', '--runs-dir', join(dir, 'cli-runs')], {
        env: { ...e, RDS_MASTER_PASSWORD: MANAGED_PASSWORD },
      });
      expect(r.code).toBe(1);
      const lines = r.stdout.split('\n').filter((l) => l.includes('preflight:'));
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(
        /^[\d:.]+ \[drain\] error: preflight: database "old" .*cannot run mysql\.rds_kill/,
      );
      expect(lines[1]).toMatch(
        /^[\d:.]+ \[stop-replication\] error: preflight: database "old" .*freeze: read-only cannot freeze it/,
      );
      expect(r.stdout).toMatch(
        /plan-failed \(exit 1\).*plan found \d+ failing check\(s\); nothing was changed/,
      );
    });

    it('M7: preflight never logs into the replication account (host-restricted, unreachable from here)', async () => {
      const f = runbook(
        '  - { id: reverse, kind: mysql.replication.reverse, with: { source: new, replica: old, replicationAccount: repl } }\n',
      );
      const loaded = loadRunbookText(f, (await import('node:fs')).readFileSync(f, 'utf8'));
      const prepared = prepareRunbook(loaded, { envStrict: true });
      expect((await preflightDatabases(prepared)).sort()).toEqual(['new', 'old']);
    });
  });
});
