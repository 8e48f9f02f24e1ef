// MySQL/MariaDB adapter: one connection per database per run, opened on first use and kept for the
// whole run so the time-critical steps (the freeze) never pay for a connect. `query` reads (also in
// dry run), `exec` writes (recorded instead in dry run), `session` sets session variables (no lasting
// effect, so it runs in both modes). mysql2 is imported lazily: kind modules import this file and
// `cutover validate` must stay fast.
import type { Connection } from 'mysql2/promise';
import { formatMs, InputError, StepError } from '../errors.js';
import type { DatabaseConfig } from '../runbook/schema.js';
import { sleep } from '../util/sleep.js';
import type { AdapterEnv, AdapterFactory, AdapterMode } from './adapters.js';
import {
  classifyFlavor,
  defaultChannel,
  type Flavor,
  type Grants,
  grantStatement,
  missingPrivilege,
  missingProcedures,
  normalizeReplicaStatus,
  type PrivilegeNeed,
  parseGrants,
  privilegeAlternatives,
  type ReplicaStatus,
  type Statements,
  statementsFor,
  viaReadOnlyProcedure,
} from './mysql-flavor.js';
import { resolveHost } from './resolve.js';

export type Row = Record<string, unknown>;

export interface QueryOptions {
  /** Name counted in the adapter stats and used in error messages ("read replica status"). */
  op?: string;
  /** Client-side limit; the connection is dropped (and reopened on next use) when it passes. */
  timeoutMs?: number;
  /** Abort: the connection is dropped so the run is not left waiting on the server. */
  signal?: AbortSignal;
  /** Run inside START TRANSACTION READ ONLY: the server refuses any write the statement attempts. */
  readOnlyTransaction?: boolean;
}

export interface Change {
  /** Rendered as "would <action> <target>: <detail> (<before> → <after>)". */
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
  detail?: string;
}

export interface ExecResult {
  /** False in dry run: the statement was recorded, not run. */
  applied: boolean;
  affectedRows: number;
  rows: Row[];
}

export interface Session {
  id: number;
  user: string;
  /** Client address without the port. */
  host: string;
  db: string | null;
  command: string;
  /** Seconds in the current state. */
  time: number;
  state: string;
  /** The running statement. Kept in memory only: it may hold other people's data. */
  info: string | null;
}

export interface Position {
  /** gtid_executed (MySQL) or gtid_binlog_pos (MariaDB); '' when the server has no GTIDs. */
  gtid: string;
  file: string | null;
  pos: number | null;
}

export interface BinlogEventRow {
  Log_name: string;
  Pos: number;
  Event_type: string;
  Server_id: number;
  End_log_pos: number;
  Info: string;
}

export interface AccountName {
  user: string;
  host: string;
}

export interface ServerIdentity {
  serverId: number;
  /** MySQL's server_uuid; null on MariaDB. */
  uuid: string | null;
  hostname: string;
  port: number;
  /** Stable key of the server itself, whatever name or address the runbook reaches it by. */
  key: string;
}

export interface WaitOptions<T> {
  what: string;
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
  check: () => Promise<{ done: boolean; value?: T; status?: string }>;
  onProgress?: (status: string, deadline: number) => void;
}

export interface WaitResult<T> {
  done: boolean;
  value?: T;
  status?: string;
  /** False in dry run: the condition was looked at once, the wait recorded. */
  waited: boolean;
}

// Every connection this process opened, per server: the tool's own sessions are never "clients".
const toolConnections = new Set<string>();

export function isToolConnection(server: ServerIdentity, id: number): boolean {
  return toolConnections.has(`${server.key}#${id}`);
}

// ---------------------------------------------------------------- errors

export class MysqlError extends StepError {}

/** The database's name and address, as every message names it. */
export function dbLabel(db: Pick<DatabaseConfig, 'name' | 'host' | 'port'>): string {
  return `database "${db.name}" (${db.host}:${db.port})`;
}

interface ErrorLike {
  code?: string;
  errno?: number;
  message?: string;
  fatal?: boolean;
}

/**
 * One line naming the database and what to check. Never includes SQL (it may hold a password).
 * With the server's flavor, privilege advice names what that platform can grant (rds_kill on RDS).
 */
export function mysqlError(
  db: Pick<DatabaseConfig, 'name' | 'host' | 'port' | 'user' | 'connectTimeoutMs'>,
  e: unknown,
  doing?: string,
  flavor?: Flavor,
): MysqlError {
  if (e instanceof MysqlError) return e;
  const err = (e ?? {}) as ErrorLike;
  const where = dbLabel(db);
  const msg = (err.message ?? String(e)).split('\n')[0]!;
  const during = doing ? ` (${doing})` : '';
  const make = (code: string, text: string) =>
    new MysqlError(code, `${where}: ${text}`, { errno: err.errno, mysqlCode: err.code }, e);
  // MySQL says 3118; MariaDB 4151, which mysql2 names after MySQL's own 4151 (a bulk-load error).
  if (err.errno === 3118 || (err.errno === 4151 && /locked/i.test(msg)))
    return make(
      'DB_ACCOUNT_LOCKED',
      `account ${db.user} is locked (ACCOUNT LOCK)${during} — a cutover's freeze or fence locks the application's accounts: is one running, or did one stop halfway? (\`cutover status --last\`)`,
    );
  switch (err.code) {
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
      return make('DB_ACCESS_DENIED', `access denied for user ${db.user} — check the password reference`);
    case 'ER_DBACCESS_DENIED_ERROR':
      return make(
        'DB_ACCESS_DENIED',
        `user ${db.user} may not use this schema (${msg}) — check databases.${db.name}.database and the account's grants`,
      );
    case 'ER_BAD_DB_ERROR':
      return make('DB_BAD_SCHEMA', `${msg} — check databases.${db.name}.database`);
    case 'ECONNREFUSED':
      return make(
        'DB_UNREACHABLE',
        `connection refused — check the host and port, and that the server is running`,
      );
    case 'ETIMEDOUT':
    case 'PROTOCOL_SEQUENCE_TIMEOUT':
      return doing && err.code === 'PROTOCOL_SEQUENCE_TIMEOUT'
        ? make('DB_TIMEOUT', `no answer while ${doing} — check the server's load and the network`)
        : make(
            'DB_UNREACHABLE',
            `no answer within ${formatMs(db.connectTimeoutMs)} — check the host and port, security groups and firewalls`,
          );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return make(
        'DB_HOST_NOT_FOUND',
        `host ${db.host} not found — check the host name (and databases.${db.name}.resolvers)`,
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return make('DB_UNREACHABLE', `host unreachable — check routing, VPN and the host address`);
    case 'ECONNRESET':
    case 'PROTOCOL_CONNECTION_LOST':
    case 'EPIPE':
      return make(
        'DB_CONNECTION_LOST',
        `connection lost${during} — the server closed it (restart, KILL or wait_timeout)`,
      );
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR': {
      // "Access denied; you need (at least one of) the SUPER, READ_ONLY ADMIN privilege(s) for this operation"
      const privs = /the (.+?) privilege/i.exec(msg)?.[1]?.split(/\s*,\s*/) ?? [];
      const first = privs.find((p) => p !== 'SUPER') ?? privs[0] ?? 'the required privilege';
      const alt = privs.filter((p) => p !== first);
      return make(
        'DB_PRIVILEGE_MISSING',
        `missing privilege ${first}${alt.length ? ` (or ${alt.join(', ')})` : ''}${during} — GRANT ${first} ON *.* TO ${db.user}`,
      );
    }
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_COLUMNACCESS_DENIED_ERROR': {
      const m =
        /^(\w+) command denied to user .+? for (?:column .+? in )?table [`']?([^`']+)[`']?(?:\.[`']?([^`']+)[`']?)?/i.exec(
          msg,
        );
      const priv = m?.[1]?.toUpperCase() ?? 'the required privilege';
      const table = m ? (m[3] ? `${m[2]}.${m[3]}` : m[2]) : 'the table';
      return make(
        'DB_PRIVILEGE_MISSING',
        `missing privilege ${priv} on ${table}${during} — GRANT ${priv} ON ${table} TO ${db.user}`,
      );
    }
    case 'ER_PROCACCESS_DENIED_ERROR': {
      const routine = /routine '([^']+)'/i.exec(msg)?.[1];
      return make(
        'DB_PRIVILEGE_MISSING',
        routine
          ? `missing privilege EXECUTE on ${routine}${during} — GRANT EXECUTE ON PROCEDURE ${routine} TO ${db.user}`
          : `missing privilege EXECUTE on the procedure${during} — ${msg}`,
      );
    }
    case 'ER_KILL_DENIED_ERROR': {
      if (!flavor)
        return make(
          'DB_PRIVILEGE_MISSING',
          `missing privilege CONNECTION ADMIN (or SUPER) to end other users' sessions${during} — ${msg}`,
        );
      const [first, ...alts] = privilegeAlternatives(flavor, 'kill-others');
      const managed = flavor.platform !== 'self-managed';
      return make(
        'DB_PRIVILEGE_MISSING',
        `${managed ? `may not end other users' sessions with KILL on ${flavor.label} (use mysql.rds_kill)` : `missing privilege ${first}${alts.length ? ` (or ${alts.join(', ')})` : ''} to end other users' sessions`}${during} — ${grantStatement(first!, db.user)}`,
      );
    }
    case 'ER_OPTION_PREVENTS_STATEMENT':
      return make('DB_READ_ONLY', `the server is read-only (read_only=ON)${during}: ${msg}`);
    case 'ER_LOCK_WAIT_TIMEOUT':
      return make(
        'DB_LOCK_WAIT_TIMEOUT',
        `lock wait timeout${during} — another session holds a lock (open transaction, LOCK TABLES)`,
      );
    default:
      return make('DB_ERROR', `${msg}${err.code ? ` [${err.code}]` : ''}${during}`);
  }
}

// ---------------------------------------------------------------- roles

/** CURRENT_ROLE(): MySQL "`r1`@`%`,`r2`@`%`" or NONE; MariaDB "r1" or NULL. */
export function activeRoles(current: string | null): string[] {
  if (!current || current === 'NONE') return [];
  return (current.match(/`[^`]+`@`[^`]*`|[^,]+/g) ?? []).map((x) => x.trim()).filter(Boolean);
}

/** What the active roles grant: MySQL SHOW GRANTS ... USING; MariaDB SHOW GRANTS FOR the role. */
export function roleGrantsStatement(
  vendor: 'mysql' | 'mariadb',
  roles: readonly string[],
): string | undefined {
  if (!roles.length) return undefined;
  const quote = (r: string) => (r.startsWith('`') ? r : `\`${r.replace(/`/g, '``')}\``);
  // MariaDB has one active role at a time; its nested roles come with it.
  return vendor === 'mysql'
    ? `SHOW GRANTS FOR CURRENT_USER() USING ${roles.map(quote).join(', ')}`
    : `SHOW GRANTS FOR ${quote(roles[0]!)}`;
}

// ---------------------------------------------------------------- statements: read or write?

const READ_HEAD = /^(SELECT|SHOW|WITH|DESCRIBE|DESC|EXPLAIN|VALUES|TABLE|CHECKSUM|DO|HELP)\b/i;

/** First keyword of a statement, past comments and parentheses. */
export function statementHead(sql: string): string {
  const s = sql
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(^|\n)\s*(--|#)[^\n]*/g, '\n')
    .trim()
    .replace(/^\(+\s*/, '');
  return /^[A-Za-z_]+/.exec(s)?.[0]?.toUpperCase() ?? '';
}

/** Statements `query` may run: reads only (plus the RDS status and configuration procedures, which read). */
export function isReadStatement(sql: string): boolean {
  const s = sql.replace(/\/\*[\s\S]*?\*\//g, ' ').trim();
  if (/^CALL\s+mysql\.(rds_replica_status|rds_show_configuration)\b/i.test(s)) return true;
  if (!READ_HEAD.test(s.replace(/^\(+\s*/, ''))) return false;
  // Writes that start like reads.
  return (
    !/\bINTO\s+(OUT|DUMP)FILE\b/i.test(s) && !/^WITH\b[\s\S]*\b(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(s)
  );
}

// ---------------------------------------------------------------- the adapter

export interface MysqlAdapter {
  /** Runbook name of the database. */
  readonly name: string;
  /** 'database "old" (127.0.0.2:33306)' */
  readonly label: string;
  readonly mode: AdapterMode;
  readonly user: string;
  readonly flavor: Flavor;
  readonly sql: Statements;
  readonly server: ServerIdentity;
  /** Thread id of the current connection (changes if it had to be reopened). */
  connectionId(): number;
  query<T extends Row = Row>(sql: string, params?: unknown[], opts?: QueryOptions): Promise<T[]>;
  exec(sql: string, params: unknown[] | undefined, change: Change, opts?: QueryOptions): Promise<ExecResult>;
  /** Session-only settings (lock_wait_timeout): run in dry run too, they change nothing lasting. */
  session(sql: string, params?: unknown[]): Promise<void>;
  variables(names: string[]): Promise<Record<string, string | null>>;
  replicaStatus(opts?: QueryOptions): Promise<ReplicaStatus | undefined>;
  position(opts?: QueryOptions): Promise<Position>;
  /** SHOW BINARY LOGS, oldest first. */
  binaryLogs(): Promise<{ name: string; size: number }[]>;
  /** SHOW BINLOG EVENTS IN file FROM pos LIMIT n (pos must start an event). */
  binlogEvents(file: string, pos: number, limit: number): Promise<BinlogEventRow[]>;
  /** Lock state of accounts ("user"@"host"), from SHOW CREATE USER; missing accounts are left out. */
  accountLocks(accounts: readonly AccountName[]): Promise<{ account: AccountName; locked: boolean }[]>;
  /** Re-reads server_id/uuid: a reconnect through a cluster endpoint may reach another server. */
  reprobe(): Promise<ServerIdentity>;
  readOnly(): Promise<{ readOnly: boolean; superReadOnly: boolean | null }>;
  grants(): Promise<Grants>;
  /** Throws DB_PRIVILEGE_MISSING when the account certainly lacks what `need` requires. */
  requirePrivilege(need: PrivilegeNeed, doing: string): Promise<void>;
  /**
   * Throws DB_PRIVILEGE_MISSING naming every mysql.<proc> (names without the schema) the account
   * certainly cannot EXECUTE, or that the server does not have.
   */
  requireProcedures(procs: readonly string[], doing: string): Promise<void>;
  /** Client sessions, the tool's own excluded. */
  sessions(): Promise<Session[]>;
  /** Live: polls until done or the deadline. Dry run: looks once and records the wait. */
  waitFor<T>(o: WaitOptions<T>): Promise<WaitResult<T>>;
  /** A second connection (same mode), e.g. a watcher; the caller closes it. */
  openExtra(): Promise<MysqlAdapter>;
  close(): Promise<void>;
}

export interface MysqlCounters {
  countRead(op: string): void;
  countWrite(op: string): void;
  record(change: Change): void;
}

type Mysql2 = typeof import('mysql2/promise');
let mysql2: Promise<Mysql2> | undefined;
function loadMysql2(): Promise<Mysql2> {
  mysql2 ??= import('mysql2/promise');
  return mysql2;
}

interface Opened {
  conn: Connection;
  id: number;
}

async function openConnection(db: DatabaseConfig): Promise<Opened> {
  const mysql = await loadMysql2();
  let address: string;
  try {
    address = (await resolveHost(db.host, db.resolvers)).address;
  } catch (e) {
    throw mysqlError(db, e, 'resolving the host');
  }
  try {
    const conn = await mysql.createConnection({
      host: address,
      port: db.port,
      user: db.user,
      ...(db.password !== undefined ? { password: db.password } : {}),
      ...(db.database ? { database: db.database } : {}),
      connectTimeout: db.connectTimeoutMs,
      ...(db.ssl ? { ssl: /\.rds\.amazonaws\.com$/i.test(db.host) ? 'Amazon RDS' : {} } : {}),
      // Values come back as the server wrote them: no time zone games, no float rounding of BIGINTs.
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      timezone: 'Z',
      charset: 'utf8mb4',
      enableKeepAlive: true,
      multipleStatements: false,
    });
    // A dropped connection must not crash the process: the next call reopens it.
    conn.on('error', () => {});
    return { conn, id: conn.threadId ?? 0 };
  } catch (e) {
    throw mysqlError(db, e, 'connecting');
  }
}

async function probe(c: Connection): Promise<{ flavor: Flavor; server: ServerIdentity }> {
  const [rows] = await c.query(
    'SELECT VERSION() AS version, @@version_comment AS comment, @@basedir AS basedir, @@server_id AS serverId, @@hostname AS hostname, @@port AS port',
  );
  const r = (rows as Row[])[0]!;
  const [vars] = await c.query(
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_uuid', 'aurora_version')",
  );
  const v = Object.fromEntries((vars as Row[]).map((x) => [String(x.Variable_name), String(x.Value)]));
  let procedures: string[] = [];
  try {
    const [procs] = await c.query(
      "SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME LIKE 'rds\\_%'",
    );
    procedures = (procs as Row[]).map((x) => String(x.n));
  } catch {
    // not visible to this account: other signals decide
  }
  let rdsAdminUser = false;
  if (String(r.basedir ?? '').startsWith('/rdsdbbin') || procedures.length) {
    try {
      const [u] = await c.query("SELECT 1 FROM mysql.user WHERE User = 'rdsadmin' LIMIT 1");
      rdsAdminUser = (u as Row[]).length > 0;
    } catch {
      // no SELECT on mysql.user: fine
    }
  }
  const flavor = classifyFlavor({
    version: String(r.version),
    versionComment: r.comment === null ? null : String(r.comment),
    basedir: r.basedir === null ? null : String(r.basedir),
    auroraVersion: v.aurora_version ?? null,
    rdsProcedures: procedures,
    rdsAdminUser,
  });
  const serverId = Number(r.serverId);
  const uuid = v.server_uuid ?? null;
  const hostname = String(r.hostname);
  const port = Number(r.port);
  return {
    flavor,
    server: { serverId, uuid, hostname, port, key: uuid ?? `${hostname}:${port}:${serverId}` },
  };
}

class Adapter implements MysqlAdapter {
  readonly label: string;
  readonly sql: Statements;
  private current: Opened | undefined;
  private reopening: Promise<Opened> | undefined;
  private closed = false;
  private grantsCache: Grants | undefined;

  constructor(
    private readonly db: DatabaseConfig,
    readonly mode: AdapterMode,
    private readonly counters: MysqlCounters,
    opened: Opened,
    readonly flavor: Flavor,
    readonly server: ServerIdentity,
  ) {
    this.label = dbLabel(db);
    this.sql = statementsFor(flavor);
    this.adopt(opened);
  }

  get name(): string {
    return this.db.name;
  }

  get user(): string {
    return this.db.user;
  }

  connectionId(): number {
    return this.current?.id ?? 0;
  }

  private adopt(o: Opened) {
    this.current = o;
    toolConnections.add(`${this.server.key}#${o.id}`);
    // Closed by the server (wait_timeout, restart, KILL) while idle: the next call opens a new one.
    const forget = () => {
      if (this.current === o) this.current = undefined;
    };
    o.conn.on('end', forget);
    o.conn.on('error', forget);
  }

  private drop() {
    const c = this.current;
    this.current = undefined;
    c?.conn.destroy();
  }

  private async conn(): Promise<Opened> {
    if (this.closed) throw new MysqlError('DB_CLOSED', `${this.label}: connection already closed`);
    if (this.current) return this.current;
    this.reopening ??= openConnection(this.db)
      .then(async (o) => {
        await this.refreshIdentity(o.conn).catch(() => {});
        return o;
      })
      .finally(() => {
        this.reopening = undefined;
      });
    const o = await this.reopening;
    if (this.current !== o) this.adopt(o);
    return o;
  }

  private async run(
    sql: string,
    params: unknown[] | undefined,
    opts: QueryOptions,
    doing: string,
  ): Promise<{ rows: Row[]; affectedRows: number }> {
    const o = await this.conn();
    const signal = opts.signal;
    if (signal?.aborted) throw signal.reason;
    let onAbort: (() => void) | undefined;
    const aborted = signal
      ? new Promise<never>((_, reject) => {
          onAbort = () => {
            // The server may keep running it; dropping the connection frees this run from waiting.
            if (this.current === o) this.drop();
            reject(signal.reason);
          };
          signal.addEventListener('abort', onAbort, { once: true });
        })
      : undefined;
    try {
      const q = o.conn.query(
        { sql, ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}) },
        params ?? [],
      );
      const [res] = (await (aborted ? Promise.race([q, aborted]) : q)) as [unknown, unknown];
      if (Array.isArray(res)) {
        // CALL returns [resultset..., OkPacket]: the first result set is what procedures report.
        const rows = (res.length && Array.isArray(res[0]) ? res[0] : res) as Row[];
        return { rows, affectedRows: 0 };
      }
      return { rows: [], affectedRows: Number((res as { affectedRows?: number }).affectedRows ?? 0) };
    } catch (e) {
      if (signal?.aborted && e === signal.reason) throw e;
      // mysql2 keeps the statement with its values interpolated (a password in CHANGE MASTER).
      if (e && typeof e === 'object' && 'sql' in e) delete (e as { sql?: string }).sql;
      if ((e as ErrorLike).fatal && this.current === o) this.drop();
      throw mysqlError(this.db, e, doing, this.flavor);
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  async query<T extends Row = Row>(sql: string, params?: unknown[], opts: QueryOptions = {}): Promise<T[]> {
    if (!isReadStatement(sql))
      throw new Error(`mysql adapter: query() is for reads, not: ${statementHead(sql)}`);
    const op = opts.op ?? `${statementHead(sql).toLowerCase()}`;
    this.counters.countRead(`mysql.${op}`);
    if (!opts.readOnlyTransaction)
      return (await this.run(sql, params, opts, opts.op ?? 'reading')).rows as T[];
    await this.run('START TRANSACTION READ ONLY', [], {}, 'starting a read-only transaction');
    try {
      const rows = (await this.run(sql, params, opts, opts.op ?? 'reading')).rows as T[];
      await this.run('COMMIT', [], {}, 'ending the read-only transaction');
      return rows;
    } catch (e) {
      await this.run('ROLLBACK', [], {}, 'ending the read-only transaction').catch(() => {});
      throw e;
    }
  }

  async exec(
    sql: string,
    params: unknown[] | undefined,
    change: Change,
    opts: QueryOptions = {},
  ): Promise<ExecResult> {
    if (this.mode === 'dry') {
      this.counters.record(change);
      return { applied: false, affectedRows: 0, rows: [] };
    }
    this.counters.countWrite(`mysql.${opts.op ?? statementHead(sql).toLowerCase()}`);
    const r = await this.run(
      // Aurora 3.06+: read_only only changes through mysql.rds_set_read_only.
      viaReadOnlyProcedure(this.sql, sql),
      params,
      opts,
      opts.op ?? `${change.action} ${change.target}`.replace(/ on .*$/, ''),
    );
    return { applied: true, ...r };
  }

  async session(sql: string, params?: unknown[]): Promise<void> {
    if (!/^SET\s+SESSION\s/i.test(sql.trim()))
      throw new Error('mysql adapter: session() only sets session variables');
    await this.run(sql, params, {}, 'setting a session variable');
  }

  async variables(names: string[]): Promise<Record<string, string | null>> {
    if (!names.length) return {};
    for (const n of names) if (!/^\w+$/.test(n)) throw new Error(`bad variable name ${n}`);
    const rows = await this.query<Row>(
      `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${names.map(() => '?').join(', ')})`,
      names,
      {
        op: 'variables',
      },
    );
    const out: Record<string, string | null> = Object.fromEntries(names.map((n) => [n, null]));
    for (const r of rows) out[String(r.Variable_name)] = r.Value === null ? null : String(r.Value);
    return out;
  }

  async replicaStatus(opts: QueryOptions = {}): Promise<ReplicaStatus | undefined> {
    const rows = await this.query(this.sql.replicaStatus, [], { op: 'replica-status', ...opts });
    const row = defaultChannel(rows);
    return row ? normalizeReplicaStatus(row) : undefined;
  }

  async position(opts: QueryOptions = {}): Promise<Position> {
    const [g] = await this.query<{ g: string | null }>(`SELECT @@GLOBAL.${this.sql.gtidVariable} AS g`, [], {
      op: 'gtid',
      ...opts,
    });
    let file: string | null = null;
    let pos: number | null = null;
    try {
      const [b] = await this.query(this.sql.binlogStatus, [], { op: 'binlog-status', ...opts });
      if (b) {
        file = b.File === undefined ? null : String(b.File);
        pos = b.Position === undefined ? null : Number(b.Position);
      }
    } catch (e) {
      // Without BINLOG MONITOR/REPLICATION CLIENT the GTID position still tells writes apart.
      if ((e as MysqlError).code !== 'DB_PRIVILEGE_MISSING') throw e;
    }
    return { gtid: (g?.g ?? '').replace(/\s+/g, ''), file, pos };
  }

  async binaryLogs(): Promise<{ name: string; size: number }[]> {
    const rows = await this.query('SHOW BINARY LOGS', [], { op: 'binary-logs' });
    return rows.map((r) => ({ name: String(r.Log_name), size: Number(r.File_size ?? 0) }));
  }

  async binlogEvents(file: string, pos: number, limit: number): Promise<BinlogEventRow[]> {
    const rows = await this.query(
      `SHOW BINLOG EVENTS IN ? FROM ${Math.max(4, Math.floor(pos))} LIMIT ${Math.max(1, Math.floor(limit))}`,
      [file],
      { op: 'binlog-events' },
    );
    return rows.map((r) => ({
      Log_name: String(r.Log_name),
      Pos: Number(r.Pos),
      Event_type: String(r.Event_type),
      Server_id: Number(r.Server_id),
      End_log_pos: Number(r.End_log_pos),
      Info: r.Info === null || r.Info === undefined ? '' : String(r.Info),
    }));
  }

  async accountLocks(accounts: readonly AccountName[]): Promise<{ account: AccountName; locked: boolean }[]> {
    const out: { account: AccountName; locked: boolean }[] = [];
    for (const account of accounts) {
      try {
        const [row] = await this.query('SHOW CREATE USER ?@?', [account.user, account.host], {
          op: 'show-create-user',
        });
        out.push({ account, locked: /\bACCOUNT\s+LOCK\b/i.test(String(Object.values(row ?? {})[0] ?? '')) });
      } catch (e) {
        // ER_CANNOT_USER (1396): no such account on this server.
        if ((e as MysqlError).details && (e as { details?: { errno?: number } }).details?.errno === 1396)
          continue;
        throw e;
      }
    }
    return out;
  }

  async reprobe(): Promise<ServerIdentity> {
    const o = await this.conn();
    await this.refreshIdentity(o.conn);
    return this.server;
  }

  /** m4: after a reconnect (an Aurora failover behind the cluster endpoint) the server may differ. */
  private async refreshIdentity(c: Connection): Promise<void> {
    const [rows] = await c.query('SELECT @@server_id AS serverId, @@hostname AS hostname, @@port AS port');
    const [vars] = await c.query("SHOW GLOBAL VARIABLES WHERE Variable_name = 'server_uuid'");
    const r = (rows as Row[])[0];
    if (!r) return;
    const uuid = (vars as Row[])[0]?.Value;
    const serverId = Number(r.serverId);
    const hostname = String(r.hostname);
    const port = Number(r.port);
    const u = uuid === undefined || uuid === null ? null : String(uuid);
    Object.assign(this.server, {
      serverId,
      uuid: u,
      hostname,
      port,
      key: u ?? `${hostname}:${port}:${serverId}`,
    });
  }

  async readOnly(): Promise<{ readOnly: boolean; superReadOnly: boolean | null }> {
    const v = await this.variables(['read_only', 'super_read_only']);
    const on = (x: string | null) => x === 'ON' || x === '1';
    return {
      readOnly: on(v.read_only ?? null),
      superReadOnly: v.super_read_only === null ? null : on(v.super_read_only ?? null),
    };
  }

  async grants(): Promise<Grants> {
    if (!this.grantsCache) {
      const lines = async (sql: string) =>
        (await this.query(sql, [], { op: 'grants' })).map((r) => String(Object.values(r)[0]));
      const own = await lines('SHOW GRANTS');
      let g = parseGrants(own);
      if (g.hasRoles) g = await this.withRoleGrants(own, lines).catch(() => g);
      this.grantsCache = g;
    }
    return this.grantsCache;
  }

  /**
   * What the session's active roles grant, so a role-holding account (the RDS master's
   * rds_superuser_role) is judged instead of "unknowable". Roles granted but not active give this
   * session nothing. MySQL: SHOW GRANTS ... USING; MariaDB: SHOW GRANTS FOR the role (nested included).
   */
  private async withRoleGrants(own: string[], lines: (sql: string) => Promise<string[]>): Promise<Grants> {
    const [row] = await this.query<{ r: string | null }>('SELECT CURRENT_ROLE() AS r', [], { op: 'grants' });
    const roles = activeRoles(row?.r ?? null);
    const sql = roleGrantsStatement(this.flavor.vendor, roles);
    // MySQL's USING form lists the user's own grants too; MariaDB's lists the role's alone.
    const all = !sql
      ? own
      : this.flavor.vendor === 'mysql'
        ? await lines(sql)
        : [...own, ...(await lines(sql))];
    return { ...parseGrants(all), hasRoles: false, roles };
  }

  async requirePrivilege(need: PrivilegeNeed, doing: string): Promise<void> {
    let g: Grants;
    try {
      g = await this.grants();
    } catch {
      return; // cannot tell: the statement itself will say
    }
    const missing = missingPrivilege(this.flavor, g, need);
    if (!missing) return;
    const alts = privilegeAlternatives(this.flavor, need).filter((a) => a !== missing);
    throw new MysqlError(
      'DB_PRIVILEGE_MISSING',
      `${this.label}: missing privilege ${missing}${alts.length ? ` (or ${alts.join(', ')})` : ''} for ${doing} — ${grantStatement(missing, this.db.user)}`,
      { privilege: missing },
    );
  }

  async requireProcedures(procs: readonly string[], doing: string): Promise<void> {
    if (!procs.length) return;
    // The probe lists the rds_% routines the account can see: one it cannot see is absent or
    // withheld, and either way CALL would fail.
    const seen = this.flavor.procedures;
    const absent = seen.length ? procs.filter((p) => !seen.includes(p)) : [];
    let denied: string[] = [];
    try {
      denied = missingProcedures(await this.grants(), procs).filter((p) => !absent.includes(p));
    } catch {
      // SHOW GRANTS unreadable: only visibility can be judged
    }
    const bad = [...new Set([...absent, ...denied])];
    if (!bad.length) return;
    throw new MysqlError(
      'DB_PRIVILEGE_MISSING',
      `${this.label}: ${this.db.user} cannot run ${bad.map((p) => `mysql.${p}`).join(', ')} for ${doing} — ${bad.map((p) => `GRANT EXECUTE ON PROCEDURE mysql.${p} TO ${this.db.user}`).join('; ')}`,
      { procedures: bad },
    );
  }

  async sessions(): Promise<Session[]> {
    const rows = await this.query<Row>(
      'SELECT ID AS id, USER AS user, HOST AS host, DB AS db, COMMAND AS command, TIME AS time, STATE AS state, INFO AS info FROM information_schema.PROCESSLIST',
      [],
      { op: 'processlist' },
    );
    return rows
      .map((r) => ({
        id: Number(r.id),
        user: String(r.user ?? ''),
        host: stripPort(String(r.host ?? '')),
        db: r.db === null || r.db === undefined ? null : String(r.db),
        command: String(r.command ?? ''),
        time: Number(r.time ?? 0),
        state: String(r.state ?? ''),
        info: r.info === null || r.info === undefined ? null : String(r.info),
      }))
      .filter((s) => !isToolConnection(this.server, s.id));
  }

  async waitFor<T>(o: WaitOptions<T>): Promise<WaitResult<T>> {
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      if (o.signal?.aborted) throw o.signal.reason;
      const r = await o.check();
      if (r.done) return { ...r, waited: this.mode === 'live' };
      if (this.mode === 'dry') {
        this.counters.record({
          action: 'wait',
          target: `up to ${formatMs(o.timeoutMs)} for ${o.what}`,
          ...(r.status ? { detail: `now: ${r.status}` } : {}),
        });
        return { ...r, waited: false };
      }
      if (Date.now() >= deadline) return { ...r, waited: true };
      o.onProgress?.(r.status ?? '', deadline);
      await sleep(Math.min(o.intervalMs, Math.max(0, deadline - Date.now())), o.signal);
    }
  }

  async openExtra(): Promise<MysqlAdapter> {
    const opened = await openConnection(this.db);
    return new Adapter(this.db, this.mode, this.counters, opened, this.flavor, this.server);
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    this.current = undefined;
    if (c) await c.conn.end().catch(() => c.conn.destroy());
  }
}

function stripPort(host: string): string {
  // "10.0.0.5:51234", "[::1]:5000", "localhost" (socket)
  const v6 = /^\[(.+)\]:\d+$/.exec(host);
  if (v6) return v6[1]!;
  return /^[^:]+:\d+$/.test(host) ? host.slice(0, host.lastIndexOf(':')) : host;
}

/** Opens a connection and detects the flavor. Used by the factory and by tests and tools. */
export async function connectMysql(
  db: DatabaseConfig,
  mode: AdapterMode,
  counters: MysqlCounters,
): Promise<MysqlAdapter> {
  const opened = await openConnection(db);
  try {
    const { flavor, server } = await probe(opened.conn);
    return new Adapter(db, mode, counters, opened, flavor, server);
  } catch (e) {
    opened.conn.destroy();
    throw mysqlError(db, e, 'detecting the server flavor');
  }
}

function countersOf(env: AdapterEnv): MysqlCounters {
  return {
    countRead: (op) => env.countRead(op),
    countWrite: (op) => env.countWrite(op),
    record: (c) => env.record(c),
  };
}

/** `ctx.adapters.use(mysqlAdapter, 'old')`: one connection per database per run. */
export const mysqlAdapter: AdapterFactory<MysqlAdapter, string> = {
  name: 'mysql',
  live: (env, name) => connectMysql(env.database(name), 'live', countersOf(env)),
  dry: (env, name) => connectMysql(env.database(name), 'dry', countersOf(env)),
  close: (a) => a.close(),
};

/**
 * For `cutover plan`/`validate --connect`: fail early (exit 2, nothing changed) when a database
 * cannot be reached or logged into, or certainly lacks a privilege the runbook's steps need.
 */
export async function checkDatabaseReachable(
  db: DatabaseConfig,
  opts: { needs?: { need: PrivilegeNeed; doing: string }[] } = {},
): Promise<void> {
  const noop = () => {};
  let a: MysqlAdapter | undefined;
  try {
    a = await connectMysql(db, 'dry', { countRead: noop, countWrite: noop, record: noop });
    for (const n of opts.needs ?? []) await a.requirePrivilege(n.need, n.doing);
  } catch (e) {
    const err = e instanceof MysqlError ? e : mysqlError(db, e);
    throw new InputError(err.code, err.message, e);
  } finally {
    await a?.close();
  }
}
