import { describe, expect, it } from 'vitest';
import { isReadStatement, mysqlError, statementHead } from '../../../src/adapters/mysql.js';
import { crcSql } from '../../../src/steps/mysql/checksum.js';
import {
  allowed,
  describeGroups,
  groupSessions,
  isClientSession,
  readOnlyStatements,
} from '../../../src/steps/mysql/common.js';
import { heartbeatLag, parseUtcMicros } from '../../../src/steps/mysql/heartbeat.js';
import { mysqlKinds, mysqlPrivilegeNeeds } from '../../../src/steps/mysql/index.js';
import { checkResult } from '../../../src/steps/mysql/query.js';
import { threadFailure } from '../../../src/steps/mysql/replica-lag.js';

const old = { name: 'old', host: '127.0.0.2', port: 33306, user: 'cutover', connectTimeoutMs: 5000 };

describe('connection errors: one line naming the database and what to check', () => {
  const err = (code: string, message = '', errno?: number) =>
    Object.assign(new Error(message), { code, errno });
  it.each([
    [
      err(
        'ER_ACCESS_DENIED_ERROR',
        "Access denied for user 'cutover'@'127.0.0.1' (using password: YES)",
        1045,
      ),
      'DB_ACCESS_DENIED',
      'database "old" (127.0.0.2:33306): access denied for user cutover — check the password reference',
    ],
    [
      err('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.2:33306'),
      'DB_UNREACHABLE',
      'database "old" (127.0.0.2:33306): connection refused — check the host and port, and that the server is running',
    ],
    [
      err('ETIMEDOUT', 'connect ETIMEDOUT'),
      'DB_UNREACHABLE',
      'database "old" (127.0.0.2:33306): no answer within 5.0s — check the host and port, security groups and firewalls',
    ],
    [
      err('ENOTFOUND', 'getaddrinfo ENOTFOUND x'),
      'DB_HOST_NOT_FOUND',
      'database "old" (127.0.0.2:33306): host 127.0.0.2 not found — check the host name (and databases.old.resolvers)',
    ],
    [
      err(
        'ER_SPECIFIC_ACCESS_DENIED_ERROR',
        'Access denied; you need (at least one of) the SUPER, READ_ONLY ADMIN privilege(s) for this operation',
        1227,
      ),
      'DB_PRIVILEGE_MISSING',
      'database "old" (127.0.0.2:33306): missing privilege READ_ONLY ADMIN (or SUPER) — GRANT READ_ONLY ADMIN ON *.* TO cutover',
    ],
    [
      err(
        'ER_TABLEACCESS_DENIED_ERROR',
        "SELECT command denied to user 'app'@'127.0.0.1' for table `mysql`.`user`",
        1142,
      ),
      'DB_PRIVILEGE_MISSING',
      'database "old" (127.0.0.2:33306): missing privilege SELECT on mysql.user — GRANT SELECT ON mysql.user TO cutover',
    ],
  ])('%s', (e, code, message) => {
    const m = mysqlError(old, e);
    expect(m.code).toBe(code);
    expect(m.message).toBe(message);
    expect(m.message).not.toContain('\n');
  });
});

describe('reads and writes', () => {
  it('tells reads from writes', () => {
    for (const s of [
      'SELECT 1',
      ' /* x */ show slave status',
      'WITH a AS (SELECT 1) SELECT * FROM a',
      '(SELECT 1)',
      'CALL mysql.rds_replica_status',
      'CHECKSUM TABLE a.b',
    ])
      expect(isReadStatement(s), s).toBe(true);
    for (const s of [
      'INSERT INTO t VALUES (1)',
      'SET GLOBAL read_only = 1',
      'STOP SLAVE',
      'KILL 4',
      "SELECT * FROM t INTO OUTFILE '/tmp/x'",
      'WITH a AS (SELECT 1) DELETE FROM t',
      'CALL mysql.rds_stop_replication',
    ])
      expect(isReadStatement(s), s).toBe(false);
    expect(statementHead('-- c\n  update t set a=1')).toBe('UPDATE');
  });
});

describe('read_only statements', () => {
  it('MariaDB (no super_read_only)', () => {
    expect(
      readOnlyStatements(
        { readOnly: false, superReadOnly: null },
        { readOnly: true, superReadOnly: null },
      ).map((s) => s.sql),
    ).toEqual(['SET GLOBAL read_only = ON']);
    expect(
      readOnlyStatements({ readOnly: true, superReadOnly: null }, { readOnly: true, superReadOnly: null }),
    ).toEqual([]);
    expect(
      readOnlyStatements(
        { readOnly: true, superReadOnly: null },
        { readOnly: false, superReadOnly: null },
      ).map((s) => s.sql),
    ).toEqual(['SET GLOBAL read_only = OFF']);
  });
  it('MySQL couples the two flags', () => {
    const sql = (a: [boolean, boolean], b: [boolean, boolean]) =>
      readOnlyStatements(
        { readOnly: a[0], superReadOnly: a[1] },
        { readOnly: b[0], superReadOnly: b[1] },
      ).map((s) => s.sql);
    expect(sql([false, false], [true, true])).toEqual(['SET GLOBAL super_read_only = ON']);
    expect(sql([true, true], [false, false])).toEqual(['SET GLOBAL read_only = OFF']);
    expect(sql([true, true], [true, false])).toEqual(['SET GLOBAL super_read_only = OFF']);
    expect(sql([false, false], [true, false])).toEqual(['SET GLOBAL read_only = ON']);
    expect(sql([true, false], [true, true])).toEqual(['SET GLOBAL super_read_only = ON']);
  });
});

describe('sessions', () => {
  const s = (user: string, host: string, command = 'Sleep', time = 5, id = 1) => ({
    id,
    user,
    host,
    db: null,
    command,
    time,
    state: '',
    info: null,
  });
  it('excludes replication and server threads', () => {
    expect(isClientSession(s('repl', '10.0.0.3', 'Binlog Dump'))).toBe(false);
    expect(isClientSession(s('system user', ''))).toBe(false);
    expect(isClientSession(s('rdsadmin', 'localhost'))).toBe(false);
    expect(isClientSession(s('app', '10.0.0.5'))).toBe(true);
  });
  it('matches allowlist entries with host wildcards', () => {
    expect(allowed(s('cutover', '10.0.0.1'), ['cutover'])).toBe(true);
    expect(allowed(s('monitor', '10.0.5.7'), ['monitor@10.0.5.%'])).toBe(true);
    expect(allowed(s('monitor', '10.0.6.7'), ['monitor@10.0.5.%'])).toBe(false);
    expect(allowed(s('app', '10.0.5.7'), ['monitor@%'])).toBe(false);
  });
  it('groups by user@host, busiest first', () => {
    const g = groupSessions([
      s('app', '10.0.0.5', 'Sleep', 40, 1),
      s('app', '10.0.0.5', 'Query', 2, 2),
      s('mobile', '10.0.1.9', 'Sleep', 300, 3),
    ]);
    expect(describeGroups(g)).toBe('app@10.0.0.5 ×2 (Sleep/Query, 40s), mobile@10.0.1.9 ×1 (Sleep, 300s)');
  });
});

describe('heartbeat lag in the source clock', () => {
  it('parses UTC stamps of both table styles', () => {
    expect(parseUtcMicros('2026-01-02 03:04:05.123456')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 + 123456);
    expect(parseUtcMicros('2026-01-02T03:04:05.5')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 + 500000);
  });
  it('caught up when our stamp arrived, behind by source-now minus the replica’s stamp otherwise', () => {
    expect(
      heartbeatLag({
        sourceNow: '2026-01-01 00:00:10',
        written: '2026-01-01 00:00:09.5',
        onReplica: '2026-01-01 00:00:09.5',
        freshWithinSec: 5,
      }).lag,
    ).toBe(0);
    expect(
      heartbeatLag({
        sourceNow: '2026-01-01 00:00:10',
        written: '2026-01-01 00:00:09.5',
        onReplica: '2026-01-01 00:00:02',
        freshWithinSec: 5,
      }).lag,
    ).toBe(8);
    expect(
      heartbeatLag({ sourceNow: '2026-01-01 00:00:10', written: '2026-01-01 00:00:09.5', freshWithinSec: 5 })
        .lag,
    ).toBeUndefined();
  });
  it('uses someone else’s heartbeat only while it is fresh', () => {
    expect(
      heartbeatLag({
        sourceNow: '2026-01-01 00:00:10',
        onSource: '2026-01-01 00:00:09',
        onReplica: '2026-01-01 00:00:07',
        freshWithinSec: 5,
      }).lag,
    ).toBe(3);
    expect(
      heartbeatLag({
        sourceNow: '2026-01-01 00:01:00',
        onSource: '2026-01-01 00:00:09',
        onReplica: '2026-01-01 00:00:09',
        freshWithinSec: 5,
      }).lag,
    ).toBeUndefined();
  });
});

describe('mysql.query assertions', () => {
  it('checks rows and the first value', () => {
    expect(checkResult([{ n: '3' }], { equals: 3 })).toEqual([]);
    expect(checkResult([{ n: '3' }], { atMost: 2 })).toEqual(['first value is "3", expected at most 2']);
    expect(checkResult([], { rows: 1, notNull: true })).toEqual([
      '0 row(s), expected 1',
      'first value is nothing, expected a value',
    ]);
    expect(checkResult([{ a: null }], { equals: null })).toEqual([]);
    expect(checkResult([{ a: 'x' }], { equals: 'y' })).toEqual(['first value is "x", expected "y"']);
  });
});

describe('kinds', () => {
  it('every kind declares the databases it references', () => {
    for (const k of mysqlKinds) expect(k.databases, k.kind).toBeTypeOf('function');
    const stop = mysqlKinds.find((k) => k.kind === 'mysql.replication.stop')!;
    expect(stop.databases!(stop.params.parse({ source: 'old', replica: 'new' }))).toEqual(['old', 'new']);
    expect(stop.undoUnsafeAfterNewWrites).toBe(true);
    const rev = mysqlKinds.find((k) => k.kind === 'mysql.replication.reverse')!;
    expect(rev.keepsRollbackSafe).toBe(true);
    expect(
      rev.databases!(rev.params.parse({ source: 'new', replica: 'old', replicationAccount: 'repl' })),
    ).toEqual(['new', 'old', 'repl']);
  });
  it('lists privilege needs for plan-time checks', () => {
    expect(
      mysqlPrivilegeNeeds('mysql.replication.stop', {
        source: 'old',
        replica: 'new',
        freeze: 'read-only',
        makeWritable: true,
      }).map((n) => `${n.database}:${n.need}`),
    ).toEqual([
      'old:set-read-only',
      'old:binlog-monitor',
      'new:binlog-monitor',
      'new:replication-admin',
      'new:set-read-only',
    ]);
    // ALTER USER ... ACCOUNT LOCK needs CREATE USER; ending the locked accounts' sessions, kill.
    expect(
      mysqlPrivilegeNeeds('mysql.replication.stop', {
        source: 'old',
        replica: 'new',
        freeze: 'account-lock',
        makeWritable: false,
      }).map((n) => `${n.database}:${n.need}`),
    ).toEqual([
      'old:lock-accounts',
      'old:kill-others',
      'old:binlog-monitor',
      'new:binlog-monitor',
      'new:replication-admin',
    ]);
  });
  it('crc32 SQL distinguishes NULL from empty and chunks by primary key', () => {
    expect(crcSql('shop.orders', ['id', 'note'], 'id')).toBe(
      "SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CAST(CRC32(CONCAT_WS('#', `id`, `note`, CONCAT(ISNULL(`id`), ISNULL(`note`)))) AS UNSIGNED)), 0) AS crc FROM `shop`.`orders` WHERE `id` BETWEEN ? AND ?",
    );
  });
});

describe('replication health', () => {
  const st = (io: string, sql: boolean, secondsBehind: number | null) => ({
    channel: '',
    sourceHost: 'h',
    sourcePort: 1,
    sourceUser: 'u',
    sourceServerId: 1,
    sourceUuid: null,
    ioState: io,
    ioRunning: io === 'Yes',
    sqlRunning: sql,
    secondsBehind,
    lastIoErrno: 0,
    lastIoError: '',
    lastSqlErrno: 0,
    lastSqlError: '',
    gtidMode: 'slave_pos' as const,
    retrievedGtid: '',
    executedGtid: '',
    sourceLogFile: null,
    readSourceLogPos: null,
    relaySourceLogFile: null,
    execSourceLogPos: null,
    sqlState: '',
  });
  it('a stopped IO thread fails even while Seconds_Behind reads 0; a stopped SQL thread fails', () => {
    expect(threadFailure({ label: 'database "new"' }, st('No', true, 0))?.code).toBe('REPLICA_IO_STOPPED');
    expect(threadFailure({ label: 'database "new"' }, st('Yes', false, 0))?.code).toBe('REPLICA_SQL_STOPPED');
    expect(threadFailure({ label: 'database "new"' }, st('Connecting', true, 0))).toBeUndefined();
    expect(threadFailure({ label: 'database "new"' }, st('Yes', true, 0))).toBeUndefined();
  });
});
