// The statement table and privilege rules for RDS, Aurora and self-managed MySQL/MariaDB, checked
// against the AWS and MySQL documentation the review cites (findings C1, M3, M6, M7, M8, M9a, m1, m5).
import { describe, expect, it } from 'vitest';
import { activeRoles, mysqlError, roleGrantsStatement } from '../../../src/adapters/mysql.js';
import {
  canExecute,
  classifyFlavor,
  type Flavor,
  type FlavorProbe,
  gtidWaitReached,
  missingPrivilege,
  missingProcedures,
  parseGrants,
  posWaitReached,
  privilegeAlternatives,
  statementsFor,
  viaReadOnlyProcedure,
} from '../../../src/adapters/mysql-flavor.js';
import { autoMethod } from '../../../src/steps/mysql/checksum.js';
import { credentialsOnly } from '../../../src/steps/mysql/index.js';
import { reverseUsesGtid } from '../../../src/steps/mysql/preflight.js';

const probes: Record<string, FlavorProbe> = {
  'mysql-5.7': { version: '5.7.44-log', basedir: '/usr/' },
  'mysql-8.0': { version: '8.0.36', basedir: '/usr/' },
  'mysql-8.4': { version: '8.4.3', basedir: '/usr/' },
  mariadb: { version: '10.11.19-MariaDB-0+deb12u1-log' },
  // No rds_% routine visible at all: names must still follow platform and version.
  'rds-8.0': { version: '8.0.36', basedir: '/rdsdbbin/mysql-8.0.36.R2/' },
  'rds-8.4': { version: '8.4.3', basedir: '/rdsdbbin/mysql-8.4.3.R1/' },
  // Partial visibility (EXECUTE only on two procedures): the review's rds84-partial-procs.
  'rds-8.4-partial': {
    version: '8.4.3',
    basedir: '/rdsdbbin/mysql-8.4.3.R1/',
    rdsProcedures: ['rds_kill', 'rds_stop_replication'],
  },
  'rds-mariadb': { version: '10.11.9-MariaDB-log', rdsProcedures: ['rds_kill'] },
  'aurora-2': { version: '5.7.12', auroraVersion: '2.11.2' },
  'aurora-3': { version: '8.0.32', auroraVersion: '3.05.2' },
  'aurora-3.06': { version: '8.0.34', auroraVersion: '3.06.0' },
  'aurora-3.06-long': { version: '8.0.34', auroraVersion: '8.0.mysql_aurora.3.06.0' },
};
const flavor = (k: string): Flavor => classifyFlavor(probes[k]!);
const st = (k: string) => statementsFor(flavor(k));
const change = (k: string) =>
  st(k).changeSource({ host: 'h', port: 3306, user: 'repl', password: 'pw', ssl: false });

describe('M3: procedure names and arity by platform and version', () => {
  it.each([
    // [flavor, CALL shown, argument count, reset]
    ['rds-8.0', 'rds_set_external_master_with_auto_position', 6, 'CALL mysql.rds_reset_external_master'],
    ['rds-8.4', 'rds_set_external_source_with_auto_position', 6, 'CALL mysql.rds_reset_external_source'],
    [
      'rds-8.4-partial',
      'rds_set_external_source_with_auto_position',
      6,
      'CALL mysql.rds_reset_external_source',
    ],
    ['aurora-2', 'rds_set_external_master_with_auto_position', 5, 'CALL mysql.rds_reset_external_master'],
    ['aurora-3', 'rds_set_external_source_with_auto_position', 5, 'CALL mysql.rds_reset_external_source'],
    ['aurora-3.06', 'rds_set_external_source_with_auto_position', 5, 'CALL mysql.rds_reset_external_source'],
  ])('%s: %s with %i arguments', (k, proc, n, reset) => {
    const c = change(k);
    expect(c.sql).toBe(`CALL mysql.${proc}(${Array(n).fill('?').join(', ')})`);
    expect(c.params).toHaveLength(n);
    expect(st(k).resetReplica).toEqual([reset]);
    expect(st(k).procs.changeSource).toBe(proc);
  });

  it('Aurora 3 passes (host, port, user, password, ssl): no delay argument', () => {
    expect(change('aurora-3').shown).toBe(
      "CALL mysql.rds_set_external_source_with_auto_position('h', 3306, 'repl', '***', 0)",
    );
    expect(change('rds-8.0').shown).toBe(
      "CALL mysql.rds_set_external_master_with_auto_position('h', 3306, 'repl', '***', 0, 0)",
    );
  });

  it('RDS MariaDB and self-managed keep their own statements', () => {
    expect(change('rds-mariadb').sql).toBe('CALL mysql.rds_set_external_master_gtid(?, ?, ?, ?, ?, ?)');
    expect(st('rds-mariadb').procs).toMatchObject({
      replicaStatus: 'rds_replica_status',
      reset: 'rds_reset_external_master',
      stop: 'rds_stop_replication',
      start: 'rds_start_replication',
    });
    expect(change('mysql-5.7').sql).toMatch(/^CHANGE MASTER TO MASTER_HOST=\?/);
    expect(change('mysql-8.0').sql).toMatch(/^CHANGE REPLICATION SOURCE TO SOURCE_HOST=\?/);
    expect(change('mysql-8.4').sql).toMatch(/^CHANGE REPLICATION SOURCE TO .*GET_SOURCE_PUBLIC_KEY=1$/);
    expect(change('mariadb').sql).toMatch(/^CHANGE MASTER TO .*MASTER_USE_GTID=current_pos$/);
    for (const k of ['mysql-5.7', 'mysql-8.0', 'mysql-8.4', 'mariadb']) expect(st(k).procs).toEqual({});
  });

  it('documented return values of each wait: only 0 is reached for GTID waits, >= 0 for position waits', () => {
    // WAIT_FOR_EXECUTED_GTID_SET: 0 reached, 1 timeout. MASTER_GTID_WAIT: 0 reached, -1 timeout.
    expect([0, '0', 1, '1', -1, '-1', null].map(gtidWaitReached)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
      false,
    ]);
    // SOURCE_POS_WAIT / MASTER_POS_WAIT: events waited (>= 0) reached, -1 timeout, NULL error.
    expect([0, 7, '12', -1, '-1', null, undefined].map(posWaitReached)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
    expect(st('mariadb').gtidWait('0-1-5', 3).sql).toBe('SELECT MASTER_GTID_WAIT(?, ?) AS r');
    expect(st('aurora-3').gtidWait('u:1-5', 3).sql).toBe('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r');
    expect(st('mysql-8.0').posWait('f', 4, 3).sql).toBe('SELECT SOURCE_POS_WAIT(?, ?, ?) AS r');
    expect(st('mysql-5.7').posWait('f', 4, 3).sql).toBe('SELECT MASTER_POS_WAIT(?, ?, ?) AS r');
  });
});

describe('M9a: read_only by SQL', () => {
  it('Aurora 3.06+ sets read_only with mysql.rds_set_read_only; RDS and Aurora < 3.06 cannot', () => {
    for (const k of ['aurora-3.06', 'aurora-3.06-long']) {
      expect(st(k).canSetReadOnly).toBe(true);
      expect(st(k).setReadOnly?.(true)).toBe('CALL mysql.rds_set_read_only(1)');
      expect(st(k).setReadOnly?.(false)).toBe('CALL mysql.rds_set_read_only(0)');
      expect(st(k).procs.setReadOnly).toBe('rds_set_read_only');
    }
    for (const k of ['aurora-3', 'aurora-2', 'rds-8.0', 'rds-8.4', 'rds-mariadb']) {
      expect(st(k).canSetReadOnly).toBe(false);
      expect(st(k).setReadOnly).toBeUndefined();
    }
    for (const k of ['mysql-8.0', 'mariadb']) expect(st(k).canSetReadOnly).toBe(true);
  });

  it('M9a: on Aurora 3.06+ the read_only statements run as mysql.rds_set_read_only, elsewhere as written', () => {
    const a = st('aurora-3.06');
    expect(viaReadOnlyProcedure(a, 'SET GLOBAL read_only = ON')).toBe('CALL mysql.rds_set_read_only(1)');
    expect(viaReadOnlyProcedure(a, 'SET GLOBAL read_only = OFF')).toBe('CALL mysql.rds_set_read_only(0)');
    // super_read_only is not separate there: either way read_only stays ON.
    expect(viaReadOnlyProcedure(a, 'SET GLOBAL super_read_only = ON')).toBe(
      'CALL mysql.rds_set_read_only(1)',
    );
    expect(viaReadOnlyProcedure(a, 'SET GLOBAL super_read_only = OFF')).toBe(
      'CALL mysql.rds_set_read_only(1)',
    );
    expect(viaReadOnlyProcedure(a, 'INSERT INTO t VALUES (1)')).toBe('INSERT INTO t VALUES (1)');
    for (const k of ['aurora-3', 'mysql-8.0', 'mariadb'])
      expect(viaReadOnlyProcedure(st(k), 'SET GLOBAL read_only = ON')).toBe('SET GLOBAL read_only = ON');
  });

  it('Aurora 3.06: making it writable needs EXECUTE on rds_set_read_only, named exactly', () => {
    const g = parseGrants(['GRANT SELECT, PROCESS ON *.* TO `cutover`@`%`']);
    expect(missingPrivilege(flavor('aurora-3.06'), g, 'set-read-only')).toBe(
      'EXECUTE ON PROCEDURE mysql.rds_set_read_only',
    );
    // Where SQL cannot do it at all, canSetReadOnly refuses instead of a privilege to ask for.
    expect(missingPrivilege(flavor('rds-8.0'), g, 'set-read-only')).toBeUndefined();
  });
});

describe('C1: ending sessions', () => {
  it('C1: managed platforms kill with mysql.rds_kill / rds_kill_query, self-managed with KILL', () => {
    for (const k of ['rds-8.0', 'rds-8.4', 'aurora-3', 'rds-mariadb']) {
      expect(st(k).kill(42)).toBe('CALL mysql.rds_kill(42)');
      expect(st(k).kill(42, 'query')).toBe('CALL mysql.rds_kill_query(42)');
    }
    for (const k of ['mysql-8.0', 'mariadb']) {
      expect(st(k).kill(42)).toBe('KILL CONNECTION 42');
      expect(st(k).kill(42, 'query')).toBe('KILL QUERY 42');
    }
  });

  it('C1: kill-others on a managed platform is EXECUTE on mysql.rds_kill, not CONNECTION_ADMIN', () => {
    const master = parseGrants([
      'GRANT SELECT, PROCESS, REPLICATION CLIENT ON *.* TO `cutover`@`%`',
      'GRANT EXECUTE ON PROCEDURE `mysql`.`rds_kill` TO `cutover`@`%`',
    ]);
    const none = parseGrants(['GRANT SELECT, PROCESS, REPLICATION CLIENT ON *.* TO `cutover`@`%`']);
    for (const k of ['rds-8.0', 'aurora-3', 'rds-mariadb']) {
      expect(missingPrivilege(flavor(k), master, 'kill-others')).toBeUndefined();
      expect(missingPrivilege(flavor(k), none, 'kill-others')).toBe('EXECUTE ON PROCEDURE mysql.rds_kill');
    }
    // Schema-wide or global EXECUTE covers it too.
    const schema = parseGrants(['GRANT EXECUTE ON `mysql`.* TO `cutover`@`%`']);
    expect(canExecute(schema, 'rds_kill')).toBe(true);
    expect(canExecute(parseGrants(['GRANT EXECUTE ON *.* TO `u`@`%`']), 'rds_kill')).toBe(true);
    expect(missingProcedures(master, ['rds_kill', 'rds_stop_replication'])).toEqual(['rds_stop_replication']);
  });

  it('m5: a denied KILL names what to grant on that platform', () => {
    const db = { name: 'old', host: 'h', port: 3306, user: 'cutover', connectTimeoutMs: 1000 };
    const denied = Object.assign(new Error('You are not owner of thread 42'), {
      code: 'ER_KILL_DENIED_ERROR',
      errno: 1095,
    });
    expect(mysqlError(db, denied, 'ending sessions', flavor('rds-8.0')).message).toBe(
      'database "old" (h:3306): may not end other users\' sessions with KILL on MySQL 8.0.36 (RDS) (use mysql.rds_kill) (ending sessions) — GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO cutover',
    );
    expect(mysqlError(db, denied, undefined, flavor('mariadb')).message).toBe(
      'database "old" (h:3306): missing privilege CONNECTION ADMIN (or SUPER) to end other users\' sessions — GRANT CONNECTION ADMIN ON *.* TO cutover',
    );
    const proc = Object.assign(
      new Error("execute command denied to user 'cutover'@'%' for routine 'mysql.rds_kill'"),
      { code: 'ER_PROCACCESS_DENIED_ERROR', errno: 1370 },
    );
    expect(mysqlError(db, proc).message).toBe(
      'database "old" (h:3306): missing privilege EXECUTE on mysql.rds_kill — GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO cutover',
    );
  });
});

describe('m1: MySQL 5.7 has SUPER, not 8.0 dynamic privileges', () => {
  it('m1: 5.7 advice names SUPER for kill, read_only, replication and writes under read_only', () => {
    const f = flavor('mysql-5.7');
    const g = parseGrants(['GRANT SELECT ON *.* TO `u`@`%`']);
    for (const need of [
      'kill-others',
      'set-read-only',
      'replication-admin',
      'write-while-read-only',
    ] as const) {
      expect(privilegeAlternatives(f, need)).toEqual(['SUPER']);
      expect(missingPrivilege(f, g, need)).toBe('SUPER');
    }
    expect(missingPrivilege(flavor('mysql-8.0'), g, 'kill-others')).toBe('CONNECTION_ADMIN');
  });
});

describe('M7: grants the account really has', () => {
  it('M7: routine and schema grants are parsed; roles whose grants were read are not "unknowable"', () => {
    const g = parseGrants([
      'GRANT USAGE ON *.* TO `cutover`@`%`',
      'GRANT `rds_superuser_role`@`%` TO `cutover`@`%`',
      'GRANT EXECUTE ON PROCEDURE `mysql`.`rds_stop_replication` TO `cutover`@`%`',
      'GRANT SELECT, INSERT ON `cutover`.* TO `cutover`@`%`',
    ]);
    expect(g.hasRoles).toBe(true);
    expect(g.routines.get('mysql.rds_stop_replication')).toEqual(new Set(['EXECUTE']));
    expect(g.schemas.get('cutover')).toEqual(new Set(['SELECT', 'INSERT']));
    // With unreadable roles nothing is certain; once their grants are read (SHOW GRANTS ... USING), it is.
    expect(canExecute(g, 'rds_kill')).toBeUndefined();
    expect(canExecute({ ...g, hasRoles: false }, 'rds_kill')).toBe(false);
    expect(missingPrivilege(flavor('rds-8.0'), { ...g, hasRoles: false }, 'kill-others')).toBe(
      'EXECUTE ON PROCEDURE mysql.rds_kill',
    );
  });

  it('M7: the active roles are read from CURRENT_ROLE() and their grants asked for per vendor', () => {
    expect(activeRoles('`rds_superuser_role`@`%`,`ops`@`10.%`')).toEqual([
      '`rds_superuser_role`@`%`',
      '`ops`@`10.%`',
    ]);
    expect(activeRoles('NONE')).toEqual([]);
    expect(activeRoles(null)).toEqual([]);
    expect(activeRoles('session_watcher')).toEqual(['session_watcher']);
    expect(roleGrantsStatement('mysql', activeRoles('`rds_superuser_role`@`%`'))).toBe(
      'SHOW GRANTS FOR CURRENT_USER() USING `rds_superuser_role`@`%`',
    );
    expect(roleGrantsStatement('mariadb', ['session_watcher'])).toBe('SHOW GRANTS FOR `session_watcher`');
    expect(roleGrantsStatement('mysql', [])).toBeUndefined();
  });

  it('M7: preflight never logs in as the replication account', () => {
    expect(
      credentialsOnly('mysql.replication.reverse', {
        source: 'new',
        replica: 'old',
        replicationAccount: 'repl',
      }),
    ).toEqual(['repl']);
    expect(credentialsOnly('mysql.replication.stop', { source: 'old', replica: 'new' })).toEqual([]);
  });

  it('M7: reverse replication needs GTIDs when the forward replication uses them, or when it says so', () => {
    expect(reverseUsesGtid({}, 'slave_pos')).toBe(true);
    expect(reverseUsesGtid({}, 'auto-position')).toBe(true);
    expect(reverseUsesGtid({}, 'off')).toBe(false);
    expect(reverseUsesGtid({ position: 'file' }, 'auto-position')).toBe(false);
    expect(reverseUsesGtid({ mode: 'gtid' }, 'off')).toBe(true);
    expect(reverseUsesGtid({ autoPosition: false }, 'auto-position')).toBe(false);
  });
});

describe('M8: checksum method', () => {
  it('M8: auto compares RDS and Aurora by crc32 of rows, same-platform same-version by CHECKSUM TABLE', () => {
    const rds80 = classifyFlavor({ version: '8.0.32', basedir: '/rdsdbbin/mysql-8.0.32.R1/' });
    expect(autoMethod(rds80, flavor('aurora-3'))).toBe('crc32');
    expect(autoMethod(flavor('mysql-8.0'), rds80)).toBe('crc32');
    expect(autoMethod(rds80, rds80)).toBe('checksum-table');
    expect(autoMethod(flavor('mariadb'), flavor('mariadb'))).toBe('checksum-table');
  });
});
