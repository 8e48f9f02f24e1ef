import { describe, expect, it } from 'vitest';
import {
  classifyFlavor,
  type Flavor,
  type FlavorProbe,
  gtidIncludes,
  hasTransactions,
  missingPrivilege,
  normalizeReplicaStatus,
  ownWritesSince,
  parseGrants,
  parseMariaGtids,
  parseMysqlGtidSet,
  statementsFor,
} from '../../../src/adapters/mysql-flavor.js';

const probes: Record<string, FlavorProbe> = {
  'mysql-5.7': { version: '5.7.44-log', versionComment: 'MySQL Community Server (GPL)', basedir: '/usr/' },
  'mysql-8.0.21': { version: '8.0.21', versionComment: 'MySQL Community Server - GPL', basedir: '/usr/' },
  'mysql-8.0.22': { version: '8.0.22', basedir: '/usr/' },
  'mysql-8.0.36': { version: '8.0.36', basedir: '/usr/' },
  'mysql-8.4': { version: '8.4.3', basedir: '/usr/' },
  'mariadb-10.4': { version: '10.4.34-MariaDB-log', versionComment: 'MariaDB Server' },
  'mariadb-10.11': { version: '10.11.19-MariaDB-0+deb12u1-log', versionComment: 'Debian 12' },
  'rds-mysql-5.7': {
    version: '5.7.44-log',
    basedir: '/rdsdbbin/mysql-5.7.44.R2/',
    rdsProcedures: [
      'rds_stop_replication',
      'rds_set_external_master_with_auto_position',
      'rds_reset_external_master',
    ],
  },
  'rds-mysql-8.0': {
    version: '8.0.36',
    basedir: '/rdsdbbin/mysql-8.0.36.R2/',
    rdsProcedures: [
      'rds_stop_replication',
      'rds_set_external_master_with_auto_position',
      'rds_reset_external_master',
    ],
  },
  'rds-mysql-8.4': {
    version: '8.4.3',
    basedir: '/rdsdbbin/mysql-8.4.3.R1/',
    rdsProcedures: [
      'rds_stop_replication',
      'rds_set_external_source_with_auto_position',
      'rds_reset_external_source',
    ],
  },
  'rds-mariadb-10.11': {
    version: '10.11.9-MariaDB-log',
    basedir: '/rdsdbbin/mariadb-10.11.9.R1/',
    rdsProcedures: ['rds_replica_status', 'rds_stop_replication'],
  },
  'rds-mariadb-10.4': { version: '10.4.34-MariaDB-log', rdsAdminUser: true },
  'aurora-mysql-3': {
    version: '8.0.32',
    auroraVersion: '3.05.2',
    basedir: '/rdsdbbin/oscar-8.0.mysql_aurora.3.05.2/',
  },
  'aurora-mysql-2': { version: '5.7.12', auroraVersion: '2.11.2' },
};

const flavor = (k: string): Flavor => classifyFlavor(probes[k]!);

describe('flavor detection', () => {
  it.each([
    ['mysql-5.7', 'mysql', 'self-managed', 'MySQL 5.7.44'],
    ['mysql-8.4', 'mysql', 'self-managed', 'MySQL 8.4.3'],
    ['mariadb-10.11', 'mariadb', 'self-managed', 'MariaDB 10.11.19'],
    ['rds-mysql-8.0', 'mysql', 'rds', 'MySQL 8.0.36 (RDS)'],
    ['rds-mariadb-10.11', 'mariadb', 'rds', 'MariaDB 10.11.9 (RDS)'],
    ['rds-mariadb-10.4', 'mariadb', 'rds', 'MariaDB 10.4.34 (RDS)'],
    ['aurora-mysql-3', 'mysql', 'aurora', 'Aurora MySQL 3.05.2 (MySQL 8.0.32)'],
  ])('%s', (k, vendor, platform, label) => {
    const f = flavor(k);
    expect(f.vendor).toBe(vendor);
    expect(f.platform).toBe(platform);
    expect(f.label).toBe(label);
  });

  it('treats the rdsadmin user, rds_ procedures, /rdsdbbin and aurora_version as RDS signals, each alone', () => {
    expect(classifyFlavor({ version: '8.0.36', rdsAdminUser: true }).platform).toBe('rds');
    expect(
      classifyFlavor({ version: '8.0.36', rdsProcedures: ['mysql.rds_stop_replication'] }).platform,
    ).toBe('rds');
    expect(classifyFlavor({ version: '8.0.36', basedir: '/rdsdbbin/x/' }).platform).toBe('rds');
    expect(classifyFlavor({ version: '8.0.32', auroraVersion: '3.05.2' }).platform).toBe('aurora');
    expect(classifyFlavor({ version: '8.0.36', basedir: '/usr/' }).platform).toBe('self-managed');
  });
});

describe('statement choice for every flavor', () => {
  const table = Object.keys(probes).map((k) => {
    const s = statementsFor(flavor(k));
    const change = s.changeSource({
      host: '10.0.0.9',
      port: 3306,
      user: 'repl',
      password: 's3cret!',
      gtidStart: '0-1-5',
    });
    return {
      k,
      status: s.replicaStatus,
      stop: s.stopReplica,
      start: s.startReplica,
      reset: s.resetReplica.join('; '),
      gtid: s.gtidVariable,
      wait: s.gtidWait('X', 5).sql,
      posWait: s.posWait('f', 4, 5).sql,
      binlog: s.binlogStatus,
      change: change.shown,
      readOnly: s.canSetReadOnly,
      superRo: s.hasSuperReadOnly,
      thread: s.stopThread?.('io') ?? null,
    };
  });
  const row = (k: string) => table.find((t) => t.k === k)!;

  it('MySQL 5.7: SLAVE words, CHANGE MASTER, gtid_executed, WAIT_FOR_EXECUTED_GTID_SET', () => {
    expect(row('mysql-5.7')).toMatchObject({
      status: 'SHOW SLAVE STATUS',
      stop: 'STOP SLAVE',
      start: 'START SLAVE',
      reset: 'RESET SLAVE ALL',
      gtid: 'gtid_executed',
      wait: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r',
      posWait: 'SELECT MASTER_POS_WAIT(?, ?, ?) AS r',
      binlog: 'SHOW MASTER STATUS',
      readOnly: true,
      superRo: true,
      thread: 'STOP SLAVE IO_THREAD',
    });
    expect(row('mysql-5.7').change).toBe(
      "CHANGE MASTER TO MASTER_HOST='10.0.0.9', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_AUTO_POSITION=1",
    );
  });

  it('MySQL 8.0.21 still says SLAVE; 8.0.22 says REPLICA but CHANGE MASTER; 8.0.23+ CHANGE REPLICATION SOURCE', () => {
    expect(row('mysql-8.0.21')).toMatchObject({ status: 'SHOW SLAVE STATUS', stop: 'STOP SLAVE' });
    expect(row('mysql-8.0.21').change).toMatch(/^CHANGE MASTER TO .*GET_MASTER_PUBLIC_KEY=1$/);
    expect(row('mysql-8.0.22')).toMatchObject({
      status: 'SHOW REPLICA STATUS',
      stop: 'STOP REPLICA',
      reset: 'RESET REPLICA ALL',
    });
    expect(row('mysql-8.0.22').change).toMatch(/^CHANGE MASTER TO /);
    expect(row('mysql-8.0.36').change).toBe(
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.9', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='***', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1",
    );
    expect(row('mysql-8.0.36').posWait).toBe('SELECT SOURCE_POS_WAIT(?, ?, ?) AS r');
    expect(row('mysql-8.0.36').binlog).toBe('SHOW MASTER STATUS');
  });

  it('MySQL 8.4: no SLAVE/MASTER statement left', () => {
    const r = row('mysql-8.4');
    expect(r).toMatchObject({
      status: 'SHOW REPLICA STATUS',
      stop: 'STOP REPLICA',
      binlog: 'SHOW BINARY LOG STATUS',
      thread: 'STOP REPLICA IO_THREAD',
    });
    expect(JSON.stringify(r)).not.toMatch(/SLAVE|MASTER/);
  });

  it('MariaDB: REPLICA words from 10.5.1, CHANGE MASTER with MASTER_USE_GTID, gtid_binlog_pos, MASTER_GTID_WAIT, no super_read_only', () => {
    expect(row('mariadb-10.4')).toMatchObject({
      status: 'SHOW SLAVE STATUS',
      stop: 'STOP SLAVE',
      reset: 'RESET SLAVE ALL',
    });
    expect(row('mariadb-10.11')).toMatchObject({
      status: 'SHOW REPLICA STATUS',
      stop: 'STOP REPLICA',
      start: 'START REPLICA',
      reset: 'RESET REPLICA ALL',
      gtid: 'gtid_binlog_pos',
      wait: 'SELECT MASTER_GTID_WAIT(?, ?) AS r',
      binlog: 'SHOW MASTER STATUS',
      readOnly: true,
      superRo: false,
    });
    expect(row('mariadb-10.11').change).toBe(
      "CHANGE MASTER TO MASTER_HOST='10.0.0.9', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_USE_GTID=current_pos",
    );
  });

  it('RDS/Aurora MySQL: replication through mysql.rds_* procedures, read_only not settable', () => {
    for (const k of ['rds-mysql-5.7', 'rds-mysql-8.0', 'aurora-mysql-2', 'aurora-mysql-3']) {
      expect(row(k)).toMatchObject({
        stop: 'CALL mysql.rds_stop_replication',
        start: 'CALL mysql.rds_start_replication',
        readOnly: false,
        thread: null,
      });
    }
    expect(row('rds-mysql-8.0').status).toBe('SHOW REPLICA STATUS');
    expect(row('rds-mysql-5.7').status).toBe('SHOW SLAVE STATUS');
    expect(row('rds-mysql-8.0').change).toBe(
      "CALL mysql.rds_set_external_master_with_auto_position('10.0.0.9', 3306, 'repl', '***', 0, 0)",
    );
    expect(row('rds-mysql-8.0').reset).toBe('CALL mysql.rds_reset_external_master');
    expect(row('rds-mysql-8.4').change).toMatch(/^CALL mysql\.rds_set_external_source_with_auto_position\(/);
    expect(row('rds-mysql-8.4').reset).toBe('CALL mysql.rds_reset_external_source');
    expect(row('aurora-mysql-3').wait).toBe('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r');
  });

  it('RDS MariaDB: rds_replica_status from 10.5, rds_set_external_master_gtid', () => {
    expect(row('rds-mariadb-10.11')).toMatchObject({
      status: 'CALL mysql.rds_replica_status',
      stop: 'CALL mysql.rds_stop_replication',
      readOnly: false,
    });
    expect(row('rds-mariadb-10.4').status).toBe('SHOW SLAVE STATUS');
    expect(row('rds-mariadb-10.11').change).toBe(
      "CALL mysql.rds_set_external_master_gtid('10.0.0.9', 3306, 'repl', '***', '0-1-5', 0)",
    );
    expect(row('rds-mariadb-10.11').wait).toBe('SELECT MASTER_GTID_WAIT(?, ?) AS r');
  });

  it('never shows the password, but sends it as a parameter', () => {
    for (const k of Object.keys(probes)) {
      const c = statementsFor(flavor(k)).changeSource({ host: 'h', port: 1, user: 'u', password: 's3cret!' });
      expect(c.shown).not.toContain('s3cret!');
      expect(c.sql).not.toContain('s3cret!');
      expect(c.params).toContain('s3cret!');
    }
  });
});

describe('replica status, one shape', () => {
  it('parses MySQL 8 Source/Replica columns', () => {
    const s = normalizeReplicaStatus({
      Replica_IO_Running: 'Yes',
      Replica_SQL_Running: 'Yes',
      Source_Host: '10.0.0.1',
      Source_Port: 3306,
      Source_Server_Id: 11,
      Source_UUID: 'AAA',
      Seconds_Behind_Source: 3,
      Auto_Position: 1,
      Executed_Gtid_Set: 'aaa:1-5,\nbbb:1-3',
      Last_IO_Errno: 0,
      Last_SQL_Errno: 0,
      Channel_Name: '',
    });
    expect(s).toMatchObject({
      ioRunning: true,
      sqlRunning: true,
      sourceHost: '10.0.0.1',
      sourcePort: 3306,
      sourceServerId: 11,
      secondsBehind: 3,
      gtidMode: 'auto-position',
      executedGtid: 'aaa:1-5,bbb:1-3',
    });
  });

  it('parses MariaDB Master/Slave columns, NULL lag and a stopped IO thread', () => {
    const s = normalizeReplicaStatus({
      Slave_IO_Running: 'No',
      Slave_SQL_Running: 'Yes',
      Master_Host: '127.0.0.2',
      Master_Port: '33306',
      Master_Server_Id: '1',
      Seconds_Behind_Master: null,
      Using_Gtid: 'Slave_Pos',
      Gtid_IO_Pos: '0-1-42',
      Last_IO_Errno: '2003',
      Last_IO_Error: "error connecting to master 'repl@127.0.0.2:33306'",
    });
    expect(s).toMatchObject({
      ioRunning: false,
      ioState: 'No',
      sqlRunning: true,
      sourcePort: 33306,
      sourceServerId: 1,
      secondsBehind: null,
      gtidMode: 'slave_pos',
      retrievedGtid: '0-1-42',
      lastIoErrno: 2003,
    });
  });

  it('Connecting is not running', () => {
    expect(
      normalizeReplicaStatus({ Slave_IO_Running: 'Connecting', Slave_SQL_Running: 'Yes' }).ioRunning,
    ).toBe(false);
  });
});

describe('GTIDs', () => {
  it('parses MariaDB lists and MySQL sets', () => {
    expect(parseMariaGtids('0-1-100,1-2-7')).toEqual([
      { domain: 0, server: 1, seq: 100 },
      { domain: 1, server: 2, seq: 7 },
    ]);
    expect(parseMariaGtids('')).toEqual([]);
    expect([...parseMysqlGtidSet('AAA:1-5:7,bbb:3').entries()]).toEqual([
      [
        'aaa',
        [
          [1, 5],
          [7, 7],
        ],
      ],
      ['bbb', [[3, 3]]],
    ]);
  });

  it('inclusion: replica caught up or not', () => {
    expect(gtidIncludes('mariadb', '0-1-100', '0-1-100')).toBe(true);
    expect(gtidIncludes('mariadb', '0-1-99', '0-1-100')).toBe(false);
    expect(gtidIncludes('mariadb', '0-1-100,1-1-5', '1-1-6')).toBe(false);
    expect(gtidIncludes('mariadb', '0-1-5', '')).toBe(true);
    expect(gtidIncludes('mysql', 'aaa:1-10', 'aaa:1-10')).toBe(true);
    expect(gtidIncludes('mysql', 'aaa:1-9', 'aaa:1-10')).toBe(false);
    expect(gtidIncludes('mysql', 'aaa:1-4:6-10', 'aaa:1-10')).toBe(false);
    expect(gtidIncludes('mysql', 'aaa:1-10,bbb:1-2', 'aaa:3-4,bbb:2')).toBe(true);
  });

  it('own writes of the new primary since the baseline', () => {
    // MariaDB: gtid_binlog_state keeps one entry per domain and server.
    expect(ownWritesSince('mariadb', 2, '0-1-100', '0-1-100')).toBeUndefined();
    expect(ownWritesSince('mariadb', 2, '0-1-100', '0-1-100,0-2-103')).toEqual({
      count: 1,
      last: '0-2-103',
      position: '0-2-103',
    });
    expect(ownWritesSince('mariadb', 2, '0-1-100,0-2-50', '0-1-100,0-2-53')).toMatchObject({ count: 3 });
    // Replicated writes from the old primary are not the replica's own.
    expect(ownWritesSince('mariadb', 2, '0-1-100', '0-1-180')).toBeUndefined();
    expect(ownWritesSince('mysql', 'bbb', 'aaa:1-100', 'aaa:1-120')).toBeUndefined();
    expect(ownWritesSince('mysql', 'bbb', 'aaa:1-100', 'aaa:1-100,bbb:1-4')).toEqual({
      count: 4,
      last: 'bbb:4',
      position: 'bbb:1-4',
    });
  });

  it('old side holding the new side’s writes requires the same server id on MariaDB', () => {
    expect(hasTransactions('mariadb', '0-1-100,0-2-103', '0-2-103')).toBe(true);
    expect(hasTransactions('mariadb', '0-1-200', '0-2-103')).toBe(false);
    expect(hasTransactions('mysql', 'aaa:1-100,bbb:1-4', 'bbb:1-4')).toBe(true);
  });
});

describe('privileges', () => {
  const maria = flavor('mariadb-10.11');
  const mysql8 = flavor('mysql-8.0.36');
  it('parses SHOW GRANTS and knows the alternatives', () => {
    const all = parseGrants([
      "GRANT ALL PRIVILEGES ON *.* TO `cutover`@`%` IDENTIFIED BY PASSWORD '*43D1' WITH GRANT OPTION",
    ]);
    expect(missingPrivilege(maria, all, 'set-read-only')).toBeUndefined();
    const app = parseGrants([
      'GRANT USAGE ON *.* TO `app`@`%`',
      'GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO `app`@`%`',
    ]);
    expect(missingPrivilege(maria, app, 'set-read-only')).toBe('READ_ONLY ADMIN');
    expect(missingPrivilege(maria, app, 'see-all-sessions')).toBe('PROCESS');
    expect(missingPrivilege(maria, app, 'kill-others')).toBe('CONNECTION ADMIN');
    expect(missingPrivilege(mysql8, app, 'replication-admin')).toBe('REPLICATION_SLAVE_ADMIN');
    const sup = parseGrants(['GRANT SUPER, PROCESS ON *.* TO `ops`@`%`']);
    expect(missingPrivilege(maria, sup, 'kill-others')).toBeUndefined();
    // MariaDB 10.11: SUPER no longer bypasses read_only.
    expect(missingPrivilege(maria, sup, 'write-while-read-only')).toBe('READ_ONLY ADMIN');
    expect(
      missingPrivilege(
        mysql8,
        parseGrants(['GRANT SYSTEM_VARIABLES_ADMIN ON *.* TO `u`@`%`']),
        'set-read-only',
      ),
    ).toBeUndefined();
  });

  it('does not claim a privilege is missing when roles could grant it', () => {
    const g = parseGrants(['GRANT USAGE ON *.* TO `u`@`%`', 'GRANT `dba`@`%` TO `u`@`%`']);
    expect(g.hasRoles).toBe(true);
    expect(missingPrivilege(mysql8, g, 'set-read-only')).toBeUndefined();
  });
});
