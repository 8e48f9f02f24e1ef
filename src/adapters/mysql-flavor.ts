// What kind of MySQL a server is, and the statements that work on it. Pure: no connection here, so
// the choice is unit-tested for every flavor. The differences that matter for a cutover:
//   MySQL 8.0.22+ says REPLICA/SOURCE (8.4 removed the SLAVE/MASTER forms), MariaDB accepts REPLICA
//   statements from 10.5.1 but keeps Master_* column names, has no gtid_executed and waits with
//   MASTER_GTID_WAIT; RDS and Aurora manage replication through mysql.rds_* procedures, end other
//   users' sessions with mysql.rds_kill (the master user has no CONNECTION_ADMIN on RDS 8.0.36+),
//   and do not let SQL change read_only (a parameter-group setting) except Aurora MySQL 3.06+
//   through mysql.rds_set_read_only. Procedure names and argument counts follow the platform and
//   version (AWS docs), never which routines the account happens to see.

export type Vendor = 'mysql' | 'mariadb';
export type Platform = 'self-managed' | 'rds' | 'aurora';

export interface Flavor {
  vendor: Vendor;
  platform: Platform;
  /** As reported by VERSION(), e.g. "10.11.19-MariaDB-0+deb12u1-log". */
  version: string;
  major: number;
  minor: number;
  patch: number;
  auroraVersion?: string;
  /** mysql.rds_* procedures the server has (RDS/Aurora), lower case, without the schema. */
  procedures: string[];
  /** "MariaDB 10.11.19", "MySQL 8.0.36 (RDS)", "Aurora MySQL 3.05.2 (MySQL 8.0.32)". */
  label: string;
}

export interface FlavorProbe {
  version: string;
  versionComment?: string | null;
  basedir?: string | null;
  /** aurora_version() or @@aurora_version when the server has it. */
  auroraVersion?: string | null;
  /** Names of mysql.rds_* procedures visible to the account. */
  rdsProcedures?: string[];
  /** Whether an `rdsadmin` account exists (only visible with SELECT on mysql.user). */
  rdsAdminUser?: boolean;
}

export function classifyFlavor(p: FlavorProbe): Flavor {
  const v = p.version;
  const vendor: Vendor = /mariadb/i.test(v) || /mariadb/i.test(p.versionComment ?? '') ? 'mariadb' : 'mysql';
  // MariaDB 10.x used to report "5.5.5-10.x.y-MariaDB" over the wire; VERSION() does not, but be safe.
  const m = /(?:^5\.5\.5-)?(\d+)\.(\d+)\.(\d+)/.exec(v.replace(/^5\.5\.5-/, ''));
  const major = Number(m?.[1] ?? 0);
  const minor = Number(m?.[2] ?? 0);
  const patch = Number(m?.[3] ?? 0);
  const procedures = (p.rdsProcedures ?? []).map((s) => s.toLowerCase().replace(/^mysql\./, '')).sort();
  const aurora = !!p.auroraVersion;
  const rds =
    aurora ||
    !!p.rdsAdminUser ||
    procedures.some((s) => s.startsWith('rds_')) ||
    /^\/rdsdbbin\//.test(p.basedir ?? '') ||
    /-rds\b/i.test(v);
  const platform: Platform = aurora ? 'aurora' : rds ? 'rds' : 'self-managed';
  const base = `${vendor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${major}.${minor}.${patch}`;
  const label =
    platform === 'aurora'
      ? `Aurora ${vendor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${p.auroraVersion} (${base})`
      : platform === 'rds'
        ? `${base} (RDS)`
        : base;
  return {
    vendor,
    platform,
    version: v,
    major,
    minor,
    patch,
    ...(p.auroraVersion ? { auroraVersion: p.auroraVersion } : {}),
    procedures,
    label,
  };
}

export function atLeast(
  f: Pick<Flavor, 'major' | 'minor' | 'patch'>,
  major: number,
  minor = 0,
  patch = 0,
): boolean {
  if (f.major !== major) return f.major > major;
  if (f.minor !== minor) return f.minor > minor;
  return f.patch >= patch;
}

export interface Sql {
  sql: string;
  params: unknown[];
  /** The statement as it may be shown (passwords masked). */
  shown: string;
}

export interface ChangeSourceOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  ssl?: boolean;
  /** MariaDB on RDS: the GTID position to start from (rds_set_external_master_gtid). */
  gtidStart?: string;
}

/** Names without the `mysql.` schema; undefined where the platform has no such procedure. */
export interface ManagedProcedures {
  stop?: string;
  start?: string;
  reset?: string;
  changeSource?: string;
  replicaStatus?: string;
  kill?: string;
  killQuery?: string;
  setReadOnly?: string;
  showConfiguration?: string;
}

export interface Statements {
  /** Replica status: one row per channel. */
  replicaStatus: string;
  stopReplica: string;
  startReplica: string;
  /** Per-thread control; undefined where the platform only stops/starts both (RDS procedures). */
  stopThread?: (t: 'io' | 'sql') => string;
  startThread?: (t: 'io' | 'sql') => string;
  /** Forget the replication configuration entirely. */
  resetReplica: string[];
  /** Binary log file and position of a source. */
  binlogStatus: string;
  /** The variable holding every transaction the server has (executed or written to its binlog). */
  gtidVariable: 'gtid_executed' | 'gtid_binlog_pos';
  /** Waits on the replica until it has executed `position`; returns 0 when reached. */
  gtidWait(position: string, timeoutSec: number): Sql;
  /** Binlog file/position wait, for sources without GTIDs; returns >= 0 when reached. */
  posWait(file: string, pos: number, timeoutSec: number): Sql;
  /** Make this server replicate from another with GTID auto-positioning. */
  changeSource(o: ChangeSourceOptions): Sql;
  /** Ends another session (connection) or only its running statement: KILL, or mysql.rds_kill(_query). */
  kill(id: number, what?: 'connection' | 'query'): string;
  /** SQL can change read_only: SET GLOBAL, or mysql.rds_set_read_only on Aurora MySQL 3.06+. */
  canSetReadOnly: boolean;
  /** Aurora MySQL 3.06+: read_only is set with this instead of SET GLOBAL (0|1). */
  setReadOnly?: (on: boolean) => string;
  /** The mysql.rds_* procedure behind each managed operation, for EXECUTE checks (managed only). */
  procs: ManagedProcedures;
  hasSuperReadOnly: boolean;
  /** Replication is driven through mysql.rds_* procedures. */
  procedures: boolean;
}

/**
 * WAIT_FOR_EXECUTED_GTID_SET answers 0 reached / 1 timeout; MASTER_GTID_WAIT 0 reached / -1
 * timeout: only 0 is "reached".
 */
export function gtidWaitReached(value: unknown): boolean {
  return value !== null && value !== undefined && Number(value) === 0;
}

/** SOURCE_POS_WAIT / MASTER_POS_WAIT: events waited (>= 0) reached, -1 timeout, NULL not replicating. */
export function posWaitReached(value: unknown): boolean {
  return value !== null && value !== undefined && Number(value) >= 0;
}

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Aurora's own version ("3.06.0" → [3, 6]); from the MySQL version when unreadable (8.0 → 3, 5.7 → 2). */
export function auroraRelease(f: Flavor): [number, number] {
  // "3.06.0", or "8.0.mysql_aurora.3.06.0" as some clients report it.
  const m = /(\d+)\.(\d+)\.\d+$/.exec(f.auroraVersion ?? '');
  if (m) return [Number(m[1]), Number(m[2])];
  return [f.major >= 8 ? 3 : 2, 0];
}

/** Aurora MySQL 3.06 added mysql.rds_set_read_only: read_only is settable by SQL from there on. */
export function auroraSetsReadOnly(f: Flavor): boolean {
  if (f.platform !== 'aurora' || f.vendor !== 'mysql') return false;
  const [major, minor] = auroraRelease(f);
  return major > 3 || (major === 3 && minor >= 6);
}

/**
 * Where read_only is set by procedure (Aurora 3.06+), the SET GLOBAL read_only/super_read_only
 * statement that stands for it; anything else unchanged. super_read_only cannot be set apart from
 * read_only there: ON and OFF of it both leave read_only ON, which is what the statement meant.
 */
export function viaReadOnlyProcedure(st: Pick<Statements, 'setReadOnly'>, sql: string): string {
  const m = /^\s*SET\s+GLOBAL\s+(super_read_only|read_only)\s*=\s*(ON|OFF|1|0)\s*$/i.exec(sql);
  if (!st.setReadOnly || !m) return sql;
  const on = /^(ON|1)$/i.test(m[2]!);
  return st.setReadOnly(m[1]!.toLowerCase() === 'super_read_only' ? true : on);
}

function killStatement(managed: boolean) {
  return (id: number, what: 'connection' | 'query' = 'connection'): string => {
    const n = Math.trunc(Number(id));
    if (managed) return `CALL mysql.${what === 'query' ? 'rds_kill_query' : 'rds_kill'}(${n})`;
    return `KILL ${what === 'query' ? 'QUERY' : 'CONNECTION'} ${n}`;
  };
}

const MANAGED_COMMON = {
  stop: 'rds_stop_replication',
  start: 'rds_start_replication',
  kill: 'rds_kill',
  killQuery: 'rds_kill_query',
  showConfiguration: 'rds_show_configuration',
} as const;

export function statementsFor(f: Flavor): Statements {
  const managed = f.platform !== 'self-managed';
  if (f.vendor === 'mariadb') {
    const replicaWords = atLeast(f, 10, 5, 1);
    const word = replicaWords ? 'REPLICA' : 'SLAVE';
    const st: Statements = {
      // RDS for MariaDB 10.5+ does not grant the master user SHOW REPLICA STATUS; its procedure does the same.
      replicaStatus: managed && atLeast(f, 10, 5) ? 'CALL mysql.rds_replica_status' : `SHOW ${word} STATUS`,
      stopReplica: managed ? 'CALL mysql.rds_stop_replication' : `STOP ${word}`,
      startReplica: managed ? 'CALL mysql.rds_start_replication' : `START ${word}`,
      resetReplica: managed ? ['CALL mysql.rds_reset_external_master'] : [`RESET ${word} ALL`],
      binlogStatus: 'SHOW MASTER STATUS',
      gtidVariable: 'gtid_binlog_pos',
      gtidWait: (position, timeoutSec) => ({
        sql: 'SELECT MASTER_GTID_WAIT(?, ?) AS r',
        params: [position, timeoutSec],
        shown: `SELECT MASTER_GTID_WAIT(${q(position)}, ${timeoutSec})`,
      }),
      posWait: (file, pos, timeoutSec) => ({
        sql: 'SELECT MASTER_POS_WAIT(?, ?, ?) AS r',
        params: [file, pos, timeoutSec],
        shown: `SELECT MASTER_POS_WAIT(${q(file)}, ${pos}, ${timeoutSec})`,
      }),
      changeSource: (o) => {
        if (managed) {
          const args = [o.host, o.port, o.user, o.password, o.gtidStart ?? '', o.ssl ? 1 : 0];
          return {
            sql: 'CALL mysql.rds_set_external_master_gtid(?, ?, ?, ?, ?, ?)',
            params: args,
            shown: `CALL mysql.rds_set_external_master_gtid(${q(o.host)}, ${o.port}, ${q(o.user)}, '***', ${q(o.gtidStart ?? '')}, ${o.ssl ? 1 : 0})`,
          };
        }
        // current_pos: a former primary resumes from what it has itself written and applied.
        const tail = `MASTER_USE_GTID=current_pos${o.ssl ? ', MASTER_SSL=1' : ''}`;
        return {
          sql: `CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, ${tail}`,
          params: [o.host, o.port, o.user, o.password],
          shown: `CHANGE MASTER TO MASTER_HOST=${q(o.host)}, MASTER_PORT=${o.port}, MASTER_USER=${q(o.user)}, MASTER_PASSWORD='***', ${tail}`,
        };
      },
      kill: killStatement(managed),
      canSetReadOnly: !managed,
      hasSuperReadOnly: false,
      procedures: managed,
      procs: managed
        ? {
            ...MANAGED_COMMON,
            reset: 'rds_reset_external_master',
            changeSource: 'rds_set_external_master_gtid',
            ...(atLeast(f, 10, 5) ? { replicaStatus: 'rds_replica_status' } : {}),
          }
        : {},
    };
    if (!managed) {
      st.stopThread = (t) => `STOP ${word} ${t === 'io' ? 'IO_THREAD' : 'SQL_THREAD'}`;
      st.startThread = (t) => `START ${word} ${t === 'io' ? 'IO_THREAD' : 'SQL_THREAD'}`;
    }
    return st;
  }

  // MySQL, RDS for MySQL, Aurora MySQL.
  const replicaWords = atLeast(f, 8, 0, 22);
  const word = replicaWords ? 'REPLICA' : 'SLAVE';
  const sourceWords = atLeast(f, 8, 0, 23);
  const aurora = f.platform === 'aurora';
  const [auroraMajor] = aurora ? auroraRelease(f) : [0];
  // AWS docs: RDS for MySQL 8.4+ and Aurora MySQL 3 say "source"; RDS 8.0 and lower and Aurora 2 "master".
  const sourceProcs = aurora ? auroraMajor >= 3 : atLeast(f, 8, 4);
  const changeProc = sourceProcs
    ? 'rds_set_external_source_with_auto_position'
    : 'rds_set_external_master_with_auto_position';
  const resetProc = sourceProcs ? 'rds_reset_external_source' : 'rds_reset_external_master';
  const auroraReadOnly = auroraSetsReadOnly(f);
  const st: Statements = {
    replicaStatus: `SHOW ${word} STATUS`,
    stopReplica: managed ? 'CALL mysql.rds_stop_replication' : `STOP ${word}`,
    startReplica: managed ? 'CALL mysql.rds_start_replication' : `START ${word}`,
    resetReplica: managed ? [`CALL mysql.${resetProc}`] : [`RESET ${word} ALL`],
    binlogStatus: atLeast(f, 8, 2) ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS',
    gtidVariable: 'gtid_executed',
    gtidWait: (position, timeoutSec) => ({
      sql: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r',
      params: [position, timeoutSec],
      shown: `SELECT WAIT_FOR_EXECUTED_GTID_SET(${q(position)}, ${timeoutSec})`,
    }),
    posWait: (file, pos, timeoutSec) => {
      const fn = atLeast(f, 8, 0, 26) ? 'SOURCE_POS_WAIT' : 'MASTER_POS_WAIT';
      return {
        sql: `SELECT ${fn}(?, ?, ?) AS r`,
        params: [file, pos, timeoutSec],
        shown: `SELECT ${fn}(${q(file)}, ${pos}, ${timeoutSec})`,
      };
    },
    changeSource: (o) => {
      if (managed) {
        // RDS: (host, port, user, password, ssl, delay); Aurora has no delayed replication: 5 arguments.
        const params = [o.host, o.port, o.user, o.password, o.ssl ? 1 : 0, ...(aurora ? [] : [0])];
        const shownArgs = [q(o.host), o.port, q(o.user), "'***'", o.ssl ? 1 : 0, ...(aurora ? [] : [0])];
        return {
          sql: `CALL mysql.${changeProc}(${params.map(() => '?').join(', ')})`,
          params,
          shown: `CALL mysql.${changeProc}(${shownArgs.join(', ')})`,
        };
      }
      const P = sourceWords ? 'SOURCE' : 'MASTER';
      const head = sourceWords ? 'CHANGE REPLICATION SOURCE TO' : 'CHANGE MASTER TO';
      // caching_sha2_password over a plain connection needs the server's RSA key (MySQL 8+).
      const extra = [
        `${P}_AUTO_POSITION=1`,
        ...(o.ssl ? [`${P}_SSL=1`] : atLeast(f, 8) ? [`GET_${P}_PUBLIC_KEY=1`] : []),
      ].join(', ');
      return {
        sql: `${head} ${P}_HOST=?, ${P}_PORT=?, ${P}_USER=?, ${P}_PASSWORD=?, ${extra}`,
        params: [o.host, o.port, o.user, o.password],
        shown: `${head} ${P}_HOST=${q(o.host)}, ${P}_PORT=${o.port}, ${P}_USER=${q(o.user)}, ${P}_PASSWORD='***', ${extra}`,
      };
    },
    kill: killStatement(managed),
    canSetReadOnly: !managed || auroraReadOnly,
    ...(auroraReadOnly
      ? { setReadOnly: (on: boolean) => `CALL mysql.rds_set_read_only(${on ? 1 : 0})` }
      : {}),
    hasSuperReadOnly: atLeast(f, 5, 7),
    procedures: managed,
    procs: managed
      ? {
          ...MANAGED_COMMON,
          reset: resetProc,
          changeSource: changeProc,
          ...(auroraReadOnly ? { setReadOnly: 'rds_set_read_only' } : {}),
        }
      : {},
  };
  if (!managed) {
    st.stopThread = (t) => `STOP ${word} ${t === 'io' ? 'IO_THREAD' : 'SQL_THREAD'}`;
    st.startThread = (t) => `START ${word} ${t === 'io' ? 'IO_THREAD' : 'SQL_THREAD'}`;
  }
  return st;
}

// ---------------------------------------------------------------- replica status, one shape

export interface ReplicaStatus {
  /** Channel (MySQL) or connection name (MariaDB multi-source); '' for the default. */
  channel: string;
  sourceHost: string | null;
  sourcePort: number | null;
  sourceUser: string | null;
  sourceServerId: number | null;
  sourceUuid: string | null;
  /** "Yes", "No" or "Connecting". */
  ioState: string;
  ioRunning: boolean;
  sqlRunning: boolean;
  secondsBehind: number | null;
  lastIoErrno: number;
  lastIoError: string;
  lastSqlErrno: number;
  lastSqlError: string;
  /** How the replica positions itself: MySQL auto-position, MariaDB slave_pos/current_pos, or file/pos. */
  gtidMode: 'auto-position' | 'slave_pos' | 'current_pos' | 'off';
  /** MySQL: Retrieved_Gtid_Set / Executed_Gtid_Set; MariaDB: Gtid_IO_Pos / '' */
  retrievedGtid: string;
  executedGtid: string;
  sourceLogFile: string | null;
  readSourceLogPos: number | null;
  relaySourceLogFile: string | null;
  execSourceLogPos: number | null;
  sqlState: string;
}

type Row = Record<string, unknown>;

function pick(row: Row, ...names: string[]): unknown {
  for (const n of names) if (n in row) return row[n];
  // Column names are case-insensitive in spirit; RDS procedures have been seen to differ in case.
  const lower = new Map(Object.keys(row).map((k) => [k.toLowerCase(), k]));
  for (const n of names) {
    const k = lower.get(n.toLowerCase());
    if (k !== undefined) return row[k];
  }
  return undefined;
}

function str(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

function num(v: unknown): number | null {
  const s = str(v);
  if (s === null || s.trim() === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** Parses one row of SHOW REPLICA/SLAVE STATUS or rds_replica_status by column name. */
export function normalizeReplicaStatus(row: Row): ReplicaStatus {
  const s = (...n: string[]) => str(pick(row, ...n));
  const ioState = s('Replica_IO_Running', 'Slave_IO_Running') ?? 'No';
  const sqlState = s('Replica_SQL_Running', 'Slave_SQL_Running') ?? 'No';
  const usingGtid = (s('Using_Gtid') ?? '').toLowerCase();
  const auto = s('Auto_Position');
  const gtidMode: ReplicaStatus['gtidMode'] =
    usingGtid === 'slave_pos'
      ? 'slave_pos'
      : usingGtid === 'current_pos'
        ? 'current_pos'
        : auto === '1'
          ? 'auto-position'
          : 'off';
  return {
    channel: s('Channel_Name', 'Connection_name') ?? '',
    sourceHost: s('Source_Host', 'Master_Host'),
    sourcePort: num(pick(row, 'Source_Port', 'Master_Port')),
    sourceUser: s('Source_User', 'Master_User'),
    sourceServerId: num(pick(row, 'Source_Server_Id', 'Master_Server_Id')),
    sourceUuid: s('Source_UUID', 'Master_UUID') || null,
    ioState,
    ioRunning: ioState === 'Yes',
    sqlRunning: sqlState === 'Yes',
    secondsBehind: num(pick(row, 'Seconds_Behind_Source', 'Seconds_Behind_Master')),
    lastIoErrno: num(pick(row, 'Last_IO_Errno')) ?? 0,
    lastIoError: s('Last_IO_Error') ?? '',
    lastSqlErrno: num(pick(row, 'Last_SQL_Errno')) ?? 0,
    lastSqlError: s('Last_SQL_Error') ?? '',
    gtidMode,
    retrievedGtid: (s('Retrieved_Gtid_Set', 'Gtid_IO_Pos') ?? '').replace(/\s+/g, ''),
    executedGtid: (s('Executed_Gtid_Set') ?? '').replace(/\s+/g, ''),
    sourceLogFile: s('Source_Log_File', 'Master_Log_File'),
    readSourceLogPos: num(pick(row, 'Read_Source_Log_Pos', 'Read_Master_Log_Pos')),
    relaySourceLogFile: s('Relay_Source_Log_File', 'Relay_Master_Log_File'),
    execSourceLogPos: num(pick(row, 'Exec_Source_Log_Pos', 'Exec_Master_Log_Pos')),
    sqlState: s('Replica_SQL_Running_State', 'Slave_SQL_Running_State') ?? '',
  };
}

/** The default channel's row (or the only one): cutovers are single-source. */
export function defaultChannel(rows: Row[]): Row | undefined {
  if (rows.length <= 1) return rows[0];
  return rows.find((r) => (str(pick(r, 'Channel_Name', 'Connection_name')) ?? '') === '') ?? rows[0];
}

// ---------------------------------------------------------------- GTIDs

export interface MariaGtid {
  domain: number;
  server: number;
  seq: number;
}

/** "0-1-100,1-2-7" → entries (gtid_binlog_pos, gtid_binlog_state, gtid_slave_pos). */
export function parseMariaGtids(s: string | null | undefined): MariaGtid[] {
  if (!s) return [];
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const m = /^(\d+)-(\d+)-(\d+)$/.exec(x);
      if (!m) throw new Error(`not a MariaDB GTID: ${x}`);
      return { domain: Number(m[1]), server: Number(m[2]), seq: Number(m[3]) };
    });
}

/** MySQL GTID set "uuid:1-5:7,uuid2:3" → uuid → inclusive intervals. */
export function parseMysqlGtidSet(s: string | null | undefined): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  if (!s) return out;
  for (const part of s.replace(/\s+/g, '').split(',').filter(Boolean)) {
    const [uuidRaw, ...ranges] = part.split(':');
    const uuid = uuidRaw!.toLowerCase();
    const list = out.get(uuid) ?? [];
    for (const r of ranges) {
      // Tagged GTIDs (8.3+, "uuid:tag:1-5") carry a non-numeric element: keep it in the key.
      if (!/^\d/.test(r)) continue;
      const [a, b] = r.split('-');
      list.push([Number(a), Number(b ?? a)]);
    }
    out.set(uuid, list);
  }
  return out;
}

function intervalsContain(have: [number, number][], want: [number, number][]): boolean {
  return want.every(([a, b]) => {
    // Every number of [a, b] must be covered; intervals in a GTID set are disjoint and sorted.
    let x = a;
    for (const [c, d] of [...have].sort((p, r) => p[0] - r[0])) {
      if (c <= x && d >= x) x = d + 1;
      if (x > b) return true;
    }
    return x > b;
  });
}

function countIntervals(list: [number, number][]): number {
  return list.reduce((n, [a, b]) => n + (b - a + 1), 0);
}

/** Does position `have` include every transaction of `want`? (Replica caught up, writes present.) */
export function gtidIncludes(vendor: Vendor, have: string, want: string): boolean {
  if (vendor === 'mariadb') {
    const h = parseMariaGtids(have);
    return parseMariaGtids(want).every((w) => h.some((x) => x.domain === w.domain && x.seq >= w.seq));
  }
  const h = parseMysqlGtidSet(have);
  for (const [uuid, iv] of parseMysqlGtidSet(want))
    if (!intervalsContain(h.get(uuid) ?? [], iv)) return false;
  return true;
}

/**
 * Does `have` hold exactly these transactions? Stricter than gtidIncludes on MariaDB: the server id
 * must match too, since another server's later sequence numbers in the same domain prove nothing.
 */
export function hasTransactions(vendor: Vendor, have: string, position: string): boolean {
  if (vendor === 'mysql') return gtidIncludes(vendor, have, position);
  const h = parseMariaGtids(have);
  return parseMariaGtids(position).every((w) =>
    h.some((x) => x.domain === w.domain && x.server === w.server && x.seq >= w.seq),
  );
}

export interface OwnWrites {
  /** Number of transactions the server wrote itself beyond the baseline. */
  count: number;
  /** The newest of them, for messages: "0-2-1043" or "uuid:17-20". */
  last: string;
  /** Position that covers them, to check elsewhere with gtidIncludes. */
  position: string;
}

/**
 * Transactions a server wrote itself (its server_id on MariaDB, its server_uuid on MySQL) that are
 * not in the baseline. MariaDB needs gtid_binlog_state (one entry per domain and server), MySQL
 * gtid_executed.
 */
export function ownWritesSince(
  vendor: Vendor,
  own: string | number,
  baseline: string,
  current: string,
): OwnWrites | undefined {
  if (vendor === 'mariadb') {
    const base = parseMariaGtids(baseline);
    const found: MariaGtid[] = [];
    let count = 0;
    for (const g of parseMariaGtids(current)) {
      if (g.server !== Number(own)) continue;
      const before = base.find((b) => b.domain === g.domain && b.server === g.server);
      if (!before || g.seq > before.seq) {
        found.push(g);
        // Sequence numbers are per domain, shared with other servers: this is an upper bound.
        count += before ? g.seq - before.seq : 1;
      }
    }
    if (!found.length) return undefined;
    const last = found.map((g) => `${g.domain}-${g.server}-${g.seq}`).join(',');
    return { count, last, position: last };
  }
  const uuid = String(own).toLowerCase();
  const base = parseMysqlGtidSet(baseline).get(uuid) ?? [];
  const cur = parseMysqlGtidSet(current).get(uuid) ?? [];
  const extra = countIntervals(cur) - countIntervals(base);
  if (extra <= 0 || intervalsContain(base, cur)) return undefined;
  const lastIv = cur[cur.length - 1]!;
  const position = `${uuid}:${cur.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(':')}`;
  return { count: extra, last: `${uuid}:${lastIv[1]}`, position };
}

// ---------------------------------------------------------------- privileges

export interface Grants {
  /** Global privileges (ON *.*), upper case, e.g. "SUPER", "READ_ONLY ADMIN", "ALL PRIVILEGES". */
  global: Set<string>;
  /** Privileges ON `schema`.*, by lower-case schema name. */
  schemas: Map<string, Set<string>>;
  /** Privileges ON PROCEDURE `schema`.`name`, by lower-case "schema.name". */
  routines: Map<string, Set<string>>;
  /** Roles are granted whose privileges could not be read: a missing one is not certain. */
  hasRoles: boolean;
  /** Roles active in the session whose grants are included above. */
  roles?: string[];
}

const unquote = (x: string) => x.replace(/^[`'"]|[`'"]$/g, '');

/** Parses SHOW GRANTS lines. The lines hold password hashes: never log them. */
export function parseGrants(lines: string[]): Grants {
  const global = new Set<string>();
  const schemas = new Map<string, Set<string>>();
  const routines = new Map<string, Set<string>>();
  let hasRoles = false;
  const add = (map: Map<string, Set<string>>, key: string, privs: string[]) => {
    const set = map.get(key) ?? new Set<string>();
    for (const p of privs) set.add(p);
    map.set(key, set);
  };
  for (const line of lines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+(?:(PROCEDURE|FUNCTION|TABLE)\s+)?(\S+)\s+TO\s/i.exec(line);
    if (!m) {
      // "GRANT `role`@`%` TO ..." (MySQL) or "GRANT role TO ..." (MariaDB): a role, no ON clause.
      if (/^GRANT\s/i.test(line)) hasRoles = true;
      continue;
    }
    const privs = m[1]!.split(',').map((p) => p.trim().toUpperCase().replace(/\s+/g, ' '));
    const object = m[3]!;
    if (object === '*.*') {
      for (const p of privs) global.add(p);
      continue;
    }
    const dot = /^(`[^`]+`|[^.]+)\.(`[^`]+`|\S+)$/.exec(object);
    if (!dot) continue;
    const schema = unquote(dot[1]!).toLowerCase();
    const name = unquote(dot[2]!).toLowerCase();
    if (m[2]?.toUpperCase() === 'PROCEDURE' || m[2]?.toUpperCase() === 'FUNCTION')
      add(routines, `${schema}.${name}`, privs);
    else if (name === '*') add(schemas, schema, privs);
  }
  return { global, schemas, routines, hasRoles };
}

/** Privilege names of one operation: any of them is enough. Undefined: the operation needs none. */
export type PrivilegeNeed =
  | 'set-read-only'
  | 'write-while-read-only'
  | 'kill-others'
  | 'see-all-sessions'
  | 'replication-admin'
  | 'replica-monitor'
  | 'binlog-monitor'
  | 'lock-accounts'
  | 'replicate-from';

/** "EXECUTE ON PROCEDURE mysql.rds_kill": a privilege that is not global names its object. */
export const executeOn = (proc: string) => `EXECUTE ON PROCEDURE mysql.${proc}`;

export function privilegeAlternatives(f: Flavor, need: PrivilegeNeed): string[] {
  const maria = f.vendor === 'mariadb';
  // MySQL 5.7 has no dynamic privileges: SUPER is the only name for these.
  const old = !maria && f.major < 8;
  const managed = f.platform !== 'self-managed';
  switch (need) {
    case 'set-read-only': {
      if (auroraSetsReadOnly(f)) return [executeOn('rds_set_read_only')];
      return maria ? ['READ_ONLY ADMIN', 'SUPER'] : old ? ['SUPER'] : ['SYSTEM_VARIABLES_ADMIN', 'SUPER'];
    }
    case 'write-while-read-only':
      // MariaDB 10.11 took READ ONLY ADMIN out of SUPER; MySQL's read_only spares CONNECTION_ADMIN/SUPER.
      return maria
        ? atLeast(f, 10, 11)
          ? ['READ_ONLY ADMIN']
          : ['READ_ONLY ADMIN', 'SUPER']
        : old
          ? ['SUPER']
          : ['CONNECTION_ADMIN', 'SUPER'];
    case 'kill-others':
      // RDS/Aurora: the documented way is mysql.rds_kill (RDS 8.0.36+ refuses CONNECTION_ADMIN).
      if (managed) return [executeOn('rds_kill')];
      return maria ? ['CONNECTION ADMIN', 'SUPER'] : old ? ['SUPER'] : ['CONNECTION_ADMIN', 'SUPER'];
    case 'see-all-sessions':
      return ['PROCESS'];
    case 'replication-admin':
      return maria
        ? ['REPLICATION SLAVE ADMIN', 'SUPER']
        : old
          ? ['SUPER']
          : ['REPLICATION_SLAVE_ADMIN', 'SUPER'];
    case 'replica-monitor':
      return maria ? ['REPLICA MONITOR', 'REPLICATION CLIENT', 'SUPER'] : ['REPLICATION CLIENT', 'SUPER'];
    case 'binlog-monitor':
      return maria ? ['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'] : ['REPLICATION CLIENT', 'SUPER'];
    case 'lock-accounts':
      return ['CREATE USER'];
    case 'replicate-from':
      // The replication account's own privilege (MySQL 8.0.22+ and MariaDB 10.5 also say REPLICA).
      return ['REPLICATION SLAVE', 'REPLICATION REPLICA'];
  }
}

const ALL = (set: Set<string> | undefined) => !!set && (set.has('ALL PRIVILEGES') || set.has('ALL'));

/** EXECUTE on mysql.<proc>: true, false, or undefined when roles that could grant it are unreadable. */
export function canExecute(g: Grants, proc: string, schema = 'mysql'): boolean | undefined {
  const has = (set: Set<string> | undefined) => ALL(set) || !!set?.has('EXECUTE');
  if (has(g.global) || has(g.schemas.get(schema)) || has(g.routines.get(`${schema}.${proc}`))) return true;
  return g.hasRoles ? undefined : false;
}

/** The statement that grants `privilege` ("PROCESS", or "EXECUTE ON PROCEDURE mysql.rds_kill"). */
export function grantStatement(privilege: string, user: string): string {
  return / ON /.test(privilege) ? `GRANT ${privilege} TO ${user}` : `GRANT ${privilege} ON *.* TO ${user}`;
}

/** The privilege to name when `need` is certainly missing; undefined when present or unknowable. */
export function missingPrivilege(f: Flavor, g: Grants, need: PrivilegeNeed): string | undefined {
  const managed = f.platform !== 'self-managed';
  // Replication procedures: each one's EXECUTE is checked by name (missingProcedures). read_only
  // on RDS and Aurora < 3.06 is a parameter-group setting: canSetReadOnly refuses it instead.
  if (managed && need === 'replication-admin') return undefined;
  if (managed && need === 'set-read-only' && !auroraSetsReadOnly(f)) return undefined;
  const alts = privilegeAlternatives(f, need);
  const proc = /^EXECUTE ON PROCEDURE mysql\.(\w+)$/.exec(alts[0] ?? '')?.[1];
  if (proc) return canExecute(g, proc) === false ? alts[0] : undefined;
  if (ALL(g.global)) {
    // On MySQL, ALL holds the static privileges; dynamic ones are listed separately but ALL at
    // *.* is granted together with them in practice.
    return undefined;
  }
  const norm = (p: string) => p.replace(/_/g, ' ');
  if (alts.some((a) => [...g.global].some((x) => norm(x) === norm(a)))) return undefined;
  if (g.hasRoles) return undefined;
  return alts[0];
}

/** Procedures (names without `mysql.`) the account certainly cannot EXECUTE. */
export function missingProcedures(g: Grants, procs: readonly string[]): string[] {
  return [...new Set(procs)].filter((p) => canExecute(g, p) === false);
}
