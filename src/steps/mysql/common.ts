// Pieces the MySQL kinds share: the adapter handle, session grouping and allowlists, the sessions
// that would block SET GLOBAL read_only, and the read_only statements themselves.
import { z } from 'zod';
import { type Change, type MysqlAdapter, mysqlAdapter, type Session } from '../../adapters/mysql.js';
import { missingPrivilege } from '../../adapters/mysql-flavor.js';
import { parseDuration } from '../../duration.js';
import type { StepContext } from '../../engine/types.js';
import { StepError } from '../../errors.js';

export const DbName = z.string().min(1).describe("a database from the runbook's databases: section");

export function db(ctx: StepContext, name: string): Promise<MysqlAdapter> {
  return ctx.adapters.use(mysqlAdapter, name);
}

export function ms(d: string | number): number {
  return parseDuration(d)!;
}

export const onOff = (b: boolean | null | undefined): string => (b ? 'ON' : 'OFF');

// ---------------------------------------------------------------- sessions

// Server threads and managed-service accounts: never clients, never killed.
const SYSTEM_USERS = new Set([
  'system user',
  'event_scheduler',
  'rdsadmin',
  'rdsrepladmin',
  'unauthenticated user',
  'mysql.session',
]);
const REPLICATION_COMMANDS =
  /^(Binlog Dump|Binlog Dump GTID|Slave_IO|Slave_SQL|Slave_worker|Register Slave|Daemon)$/i;

/** A client of the application (or a person), as opposed to replication and server threads. */
export function isClientSession(s: Session): boolean {
  if (SYSTEM_USERS.has(s.user.toLowerCase())) return false;
  if (REPLICATION_COMMANDS.test(s.command)) return false;
  return s.command !== 'Killed';
}

/** "user" (any host), "user@host" or "user@10.0.%": MySQL-style % and _ wildcards in the host. */
export function allowed(s: Pick<Session, 'user' | 'host'>, allowlist: readonly string[]): boolean {
  return allowlist.some((entry) => {
    const at = entry.lastIndexOf('@');
    const user = at < 0 ? entry : entry.slice(0, at);
    const host = at < 0 ? '%' : entry.slice(at + 1);
    if (user !== s.user && user !== '%') return false;
    const re = new RegExp(
      `^${host
        .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
        .replace(/%/g, '.*')
        .replace(/_/g, '.')}$`,
      'i',
    );
    return re.test(s.host);
  });
}

export interface SessionGroup {
  /** "app@10.0.0.5" */
  who: string;
  count: number;
  /** Longest time in the current state, seconds. */
  maxTime: number;
  commands: string[];
  ids: number[];
}

export function groupSessions(sessions: readonly Session[]): SessionGroup[] {
  const by = new Map<string, SessionGroup>();
  for (const s of sessions) {
    const who = `${s.user}@${s.host || 'localhost'}`;
    const g = by.get(who) ?? { who, count: 0, maxTime: 0, commands: [], ids: [] };
    g.count++;
    g.maxTime = Math.max(g.maxTime, s.time);
    if (!g.commands.includes(s.command)) g.commands.push(s.command);
    g.ids.push(s.id);
    by.set(who, g);
  }
  return [...by.values()].sort((a, b) => b.count - a.count || a.who.localeCompare(b.who));
}

/** "app@10.0.0.5 ×3 (Sleep, 45s), report@10.0.1.2 ×1 (Query, 2s)" */
export function describeGroups(groups: readonly SessionGroup[]): string {
  if (!groups.length) return 'none';
  return groups.map((g) => `${g.who} ×${g.count} (${g.commands.join('/')}, ${g.maxTime}s)`).join(', ');
}

// ---------------------------------------------------------------- read_only

export interface ReadOnlyState {
  readOnly: boolean;
  /** null where the server has no super_read_only (MariaDB). */
  superReadOnly: boolean | null;
}

export interface SetVar {
  variable: 'read_only' | 'super_read_only';
  value: boolean;
  sql: string;
}

/**
 * Statements taking read_only/super_read_only from one state to another. MySQL couples them:
 * super_read_only=ON turns read_only on, read_only=OFF turns super_read_only off.
 */
export function readOnlyStatements(from: ReadOnlyState, to: ReadOnlyState): SetVar[] {
  const set = (variable: SetVar['variable'], value: boolean): SetVar => ({
    variable,
    value,
    sql: `SET GLOBAL ${variable} = ${onOff(value)}`,
  });
  const hasSuper = from.superReadOnly !== null;
  const toSuper = hasSuper ? !!to.superReadOnly : false;
  if (!to.readOnly) return from.readOnly || from.superReadOnly ? [set('read_only', false)] : [];
  if (toSuper) return from.superReadOnly ? [] : [set('super_read_only', true)];
  const out: SetVar[] = [];
  if (hasSuper && from.superReadOnly) out.push(set('super_read_only', false));
  if (!from.readOnly) out.push(set('read_only', true));
  return out;
}

export function readOnlyText(s: ReadOnlyState): string {
  return s.superReadOnly === null
    ? `read_only=${onOff(s.readOnly)}`
    : `read_only=${onOff(s.readOnly)}, super_read_only=${onOff(s.superReadOnly)}`;
}

/** The plan/journal line of one read_only statement: before → after on the named database. */
export function readOnlyChange(s: SetVar, on: string, from: ReadOnlyState, purpose: string): Change {
  return {
    action: 'SET GLOBAL',
    target: `${s.variable} = ${onOff(s.value)} on ${on}`,
    before: onOff(s.variable === 'read_only' ? from.readOnly : from.superReadOnly),
    after: onOff(s.value),
    detail: purpose,
  };
}

/** Runs the statements with a short lock_wait_timeout; a timeout names the sessions in the way. */
export async function applyReadOnly(
  a: MysqlAdapter,
  from: ReadOnlyState,
  to: ReadOnlyState,
  lockWaitMs: number,
  purpose: string,
): Promise<SetVar[]> {
  const stmts = readOnlyStatements(from, to);
  if (!stmts.length) return stmts;
  await a.session('SET SESSION lock_wait_timeout = ?', [Math.max(1, Math.ceil(lockWaitMs / 1000))]);
  try {
    let state = { ...from };
    for (const s of stmts) {
      await a.exec(s.sql, [], readOnlyChange(s, a.name, state, purpose));
      state =
        s.variable === 'read_only'
          ? {
              readOnly: s.value,
              superReadOnly: s.value ? state.superReadOnly : state.superReadOnly === null ? null : false,
            }
          : { readOnly: s.value ? true : state.readOnly, superReadOnly: s.value };
    }
  } catch (e) {
    if ((e as StepError).code === 'DB_LOCK_WAIT_TIMEOUT') {
      const blockers = await findBlockers(a).catch(() => undefined);
      throw new StepError(
        'READ_ONLY_BLOCKED',
        `${a.label}: SET GLOBAL read_only waited ${Math.ceil(lockWaitMs / 1000)}s for locks held by ${blockers?.length ? blockers.map(blockerText).join(', ') : `a session this account cannot identify${blockers ? ` (${NO_MDL_HINT})` : ''}`} — end them or set killBlockers: true`,
        { blockers },
      );
    }
    throw e;
  } finally {
    await a.session('SET SESSION lock_wait_timeout = DEFAULT').catch(() => {});
  }
  return stmts;
}

// ---------------------------------------------------------------- blockers

export interface Blocker {
  id: number;
  who: string;
  reason: string;
}

export function blockerText(b: Blocker): string {
  return `${b.who} (id ${b.id}: ${b.reason})`;
}

const NO_MDL_HINT =
  'sessions holding LOCK TABLES are only visible with performance_schema or the metadata_lock_info plugin';

/**
 * Sessions that make SET GLOBAL read_only wait: LOCK TABLES and FLUSH TABLES WITH READ LOCK holders,
 * statements writing right now, and on MySQL open transactions that changed rows. (On MariaDB an
 * open transaction does not block: its COMMIT fails with 1290 instead.)
 */
export async function findBlockers(a: MysqlAdapter): Promise<Blocker[]> {
  const sessions = (await a.sessions()).filter(isClientSession);
  const byId = new Map(sessions.map((s) => [s.id, s]));
  const who = (id: number) => {
    const s = byId.get(id);
    return s ? `${s.user}@${s.host}` : `thread ${id}`;
  };
  const out = new Map<number, Blocker>();
  const add = (id: number, reason: string) => {
    if (!byId.has(id) || out.has(id)) return;
    out.set(id, { id, who: who(id), reason });
  };
  for (const l of await metadataLocks(a)) {
    if (/global/i.test(l.type) || /global read lock/i.test(l.mode)) add(l.id, 'FLUSH TABLES WITH READ LOCK');
    else if (/NO_READ_WRITE|NO_WRITE|READ_ONLY|EXCLUSIVE/i.test(l.mode) && l.object)
      add(l.id, `LOCK TABLES ${l.object}`);
  }
  for (const s of sessions) {
    if (
      s.command === 'Query' &&
      s.info &&
      /^\s*(INSERT|UPDATE|DELETE|REPLACE|ALTER|CREATE|DROP|TRUNCATE|LOAD|OPTIMIZE)\b/i.test(s.info) &&
      s.time >= 1
    )
      add(s.id, `running a ${s.info.trim().split(/\s+/)[0]!.toUpperCase()} for ${s.time}s`);
  }
  if (a.flavor.vendor === 'mysql') {
    try {
      const trx = await a.query<{ id: number; age: number; modified: number }>(
        'SELECT trx_mysql_thread_id AS id, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS age, trx_rows_modified AS modified FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0',
        [],
        { op: 'open-transactions' },
      );
      for (const t of trx) add(Number(t.id), `open transaction for ${t.age}s, ${t.modified} row(s) changed`);
    } catch {
      // no PROCESS: the processlist already showed what this account can see
    }
  }
  return [...out.values()].sort((x, y) => x.id - y.id);
}

interface MdlLock {
  id: number;
  mode: string;
  type: string;
  object: string;
}

async function metadataLocks(a: MysqlAdapter): Promise<MdlLock[]> {
  const tries: [string, string][] = [
    [
      'mariadb-plugin',
      "SELECT THREAD_ID AS id, LOCK_MODE AS mode, LOCK_TYPE AS type, CONCAT_WS('.', TABLE_SCHEMA, TABLE_NAME) AS object FROM information_schema.METADATA_LOCK_INFO",
    ],
    [
      'performance-schema',
      "SELECT t.PROCESSLIST_ID AS id, m.LOCK_TYPE AS mode, m.OBJECT_TYPE AS type, CONCAT_WS('.', m.OBJECT_SCHEMA, m.OBJECT_NAME) AS object FROM performance_schema.metadata_locks m JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID WHERE m.LOCK_STATUS = 'GRANTED' AND t.PROCESSLIST_ID IS NOT NULL AND m.OBJECT_TYPE IN ('TABLE', 'GLOBAL')",
    ],
  ];
  for (const [op, sql] of tries) {
    try {
      const rows = await a.query<Record<string, unknown>>(sql, [], { op: `metadata-locks-${op}` });
      return rows.map((r) => ({
        id: Number(r.id),
        mode: String(r.mode ?? ''),
        type: String(r.type ?? ''),
        object: String(r.object ?? ''),
      }));
    } catch {
      // not available here: try the next source
    }
  }
  return [];
}

const mysqlCode = (e: unknown) => (e as { details?: { mysqlCode?: string } }).details?.mysqlCode;

/**
 * Ends a session, tolerating one that ended in the meantime. KILL CONNECTION self-managed;
 * CALL mysql.rds_kill on RDS/Aurora, whose master user may not KILL other users' sessions (RDS
 * 8.0.36+ refuses CONNECTION_ADMIN). Each falls back to the other when refused: KILL denied (1095)
 * where rds_kill exists, or rds_kill not executable by an account that holds CONNECTION_ADMIN
 * itself (Aurora's master). When both are refused, the first refusal says what to grant.
 */
export async function killSession(
  a: MysqlAdapter,
  s: { id: number; who: string; reason: string },
): Promise<boolean> {
  const id = Math.trunc(Number(s.id));
  const run = async (sql: string) => {
    const proc = /^CALL (\S+)\(/.exec(sql)?.[1];
    const change: Change = {
      action: proc ? 'CALL' : 'KILL',
      target: `${proc ? `${proc}: ` : ''}connection ${id} (${s.who}) on ${a.name}`,
      detail: s.reason,
    };
    return (await a.exec(sql, [], change, { op: 'kill' })).applied;
  };
  const first = a.sql.kill(id);
  const viaProc = first.startsWith('CALL');
  const other = viaProc ? `KILL CONNECTION ${id}` : `CALL mysql.rds_kill(${id})`;
  const refused = (e: unknown) =>
    viaProc
      ? ['ER_PROCACCESS_DENIED_ERROR', 'ER_SP_DOES_NOT_EXIST'].includes(mysqlCode(e) ?? '')
      : mysqlCode(e) === 'ER_KILL_DENIED_ERROR' && a.flavor.procedures.includes('rds_kill');
  try {
    return await run(first);
  } catch (e) {
    if (mysqlCode(e) === 'ER_NO_SUCH_THREAD') return false;
    if (!refused(e)) throw e;
    try {
      return await run(other);
    } catch (e2) {
      if (mysqlCode(e2) === 'ER_NO_SUCH_THREAD') return false;
      throw e;
    }
  }
}

/**
 * Throws DB_PRIVILEGE_MISSING when killSession certainly cannot end other accounts' sessions:
 * KILL's privilege self-managed; on RDS/Aurora EXECUTE on mysql.rds_kill, unless the account holds
 * CONNECTION_ADMIN/SUPER itself for certain (Aurora's master), which killSession falls back to.
 */
export async function requireKill(a: MysqlAdapter, doing: string): Promise<void> {
  if (!a.sql.procedures || !a.sql.procs.kill) return a.requirePrivilege('kill-others', doing);
  try {
    await a.requireProcedures([a.sql.procs.kill], doing);
  } catch (e) {
    const g = await a.grants().catch(() => undefined);
    const direct = { ...a.flavor, platform: 'self-managed' as const };
    if (g && !g.hasRoles && !missingPrivilege(direct, g, 'kill-others')) return;
    throw e;
  }
}

export function notReplicaError(a: MysqlAdapter): StepError {
  return new StepError(
    'NOT_A_REPLICA',
    `${a.label} has no replication configured (${a.sql.replicaStatus} is empty) — check the replica's name`,
  );
}
