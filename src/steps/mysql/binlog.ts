// "Did anything write?" — one reader for every guard that asks it (drain quiet interval, writes
// after the freeze, DIVERGED, the new side's writes in undo). Positions alone cannot tell: managed
// platforms write their own rows (rdsadmin heartbeats, mysql.rds_history) and rotate the binlog, and
// the tool's own account statements (ACCOUNT LOCK/UNLOCK) are binlogged too. So the events between
// two coordinates are read and grouped into transactions, each classified by what it touched.
import type { MysqlAdapter } from '../../adapters/mysql.js';
import { hasTransactions } from '../../adapters/mysql-flavor.js';
import { StepError } from '../../errors.js';

export interface Coord {
  file: string;
  pos: number;
}

/** service: only the `mysql` system schema (rds_* tables, accounts); tool: the heartbeat schema. */
export type WriteClass = 'service' | 'tool' | 'application';

export interface BinlogTxn {
  /** "0-1-1043" (MariaDB), "uuid:17" (MySQL); null when anonymous (MySQL gtid_mode=OFF). */
  gtid: string | null;
  serverId: number;
  start: Coord;
  /** Position right after the transaction: where a replica that has it stands. */
  end: Coord;
  /** "shop.orders", "mysql.rds_heartbeat2", "ALTER USER" (statement heads, never their text). */
  objects: string[];
  class: WriteClass;
}

export interface BinlogWrites {
  from: Coord;
  to: Coord;
  transactions: BinlogTxn[];
  /** Files entered after `from.file` (rotations are not writes). */
  rotations: number;
  /** The reader stopped at maxEvents: counts are lower bounds. */
  truncated: boolean;
}

export interface ReaderOptions {
  /** Schemas whose writes are the tool's own (the replica-lag heartbeat); default ["cutover"]. */
  toolSchemas?: readonly string[];
  /** Stop after this many events (the answer becomes "at least"); default 200,000. */
  maxEvents?: number;
  /** Events per SHOW BINLOG EVENTS round trip. */
  batch?: number;
}

export interface BinlogEvent {
  Log_name: string;
  Pos: number;
  Event_type: string;
  Server_id: number;
  End_log_pos: number;
  Info: string;
}

const ACCOUNT_STMT =
  /^(CREATE|ALTER|DROP|RENAME)\s+(USER|ROLE)\b|^(GRANT|REVOKE)\b|^SET\s+(PASSWORD|DEFAULT\s+ROLE)\b|^FLUSH\s+(PRIVILEGES|USER_RESOURCES)\b/i;
const IDENT = '(?:`(?:[^`]|``)+`|[\\w$]+)';
const TABLE_REF = new RegExp(`^(${IDENT})(?:\\s*\\.\\s*(${IDENT}))?`);
const unquote = (s: string) => (s.startsWith('`') ? s.slice(1, -1).replace(/``/g, '`') : s);

/** The objects a statement-format Query event writes: "db.table", or the statement head. */
export function statementObjects(info: string): string[] {
  let db = '';
  let s = info.trim();
  const use = /^use\s+(`(?:[^`]|``)+`|[\w$]+)\s*;\s*/i.exec(s);
  if (use) {
    db = unquote(use[1]!);
    s = s.slice(use[0].length);
  }
  s = s
    .replace(/^\/\*[\s\S]*?\*\/\s*/g, '')
    .replace(/^SET\s+STATEMENT\s+[\s\S]+?\s+FOR\s+/i, '')
    .trim();
  if (/^(BEGIN|COMMIT|XA\s|SAVEPOINT|ROLLBACK)/i.test(s)) return [];
  const acct = ACCOUNT_STMT.exec(s);
  if (acct) return [`mysql:${acct[0].toUpperCase().replace(/\s+/g, ' ')}`];
  const m =
    /^(?:INSERT|REPLACE)(?:\s+(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE))*\s+(?:INTO\s+)?/i.exec(s) ??
    /^UPDATE(?:\s+(?:LOW_PRIORITY|IGNORE))*\s+/i.exec(s) ??
    /^DELETE(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE))*\s+FROM\s+/i.exec(s) ??
    /^(?:CREATE|ALTER|DROP|TRUNCATE|RENAME|OPTIMIZE|ANALYZE|REPAIR)\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?(?:TABLE|VIEW|INDEX\s+\S+\s+ON|TRIGGER|EVENT|PROCEDURE|FUNCTION|SEQUENCE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?/i.exec(
      s,
    ) ??
    /^LOAD\s+DATA\b[\s\S]*?\bINTO\s+TABLE\s+/i.exec(s);
  if (m) {
    const t = TABLE_REF.exec(s.slice(m[0].length));
    if (t) return [t[2] ? `${unquote(t[1]!)}.${unquote(t[2])}` : `${db || '?'}.${unquote(t[1]!)}`];
  }
  const schema = /^(?:CREATE|DROP|ALTER)\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(\S+)/i.exec(
    s,
  );
  if (schema) return [`${unquote(schema[1]!.replace(/;$/, ''))}.*`];
  // Unknown shape: name its head and keep it an application write (never excused by guesswork).
  return [s.split(/\s+/).slice(0, 2).join(' ').toUpperCase() || 'statement'];
}

function classify(objects: readonly string[], toolSchemas: readonly string[]): WriteClass {
  if (!objects.length) return 'application';
  const schemaOf = (o: string) =>
    o.startsWith('mysql:') ? 'mysql' : o.includes('.') ? o.split('.')[0]! : '';
  const schemas = objects.map((o) => schemaOf(o).toLowerCase());
  if (schemas.every((s) => s === 'mysql')) return 'service';
  if (schemas.every((s) => s === 'mysql' || toolSchemas.includes(s))) return 'tool';
  return 'application';
}

function gtidOf(info: string): string | null | undefined {
  const maria = /GTID\s+(\d+-\d+-\d+)/.exec(info);
  if (maria) return maria[1]!;
  const mysql = /GTID_NEXT\s*=\s*'([^']+)'/i.exec(info);
  if (mysql) return /ANONYMOUS/i.test(mysql[1]!) ? null : mysql[1]!;
  return undefined;
}

/**
 * Groups events into transactions. A transaction opens at a Gtid/Anonymous_Gtid event (or a bare
 * BEGIN on servers without them) and closes at Xid, a COMMIT/ROLLBACK query, or a DDL statement.
 */
export function groupTransactions(
  events: readonly BinlogEvent[],
  toolSchemas: readonly string[] = ['cutover'],
): BinlogTxn[] {
  const out: BinlogTxn[] = [];
  let cur: (BinlogTxn & { multi: boolean }) | undefined;
  const close = () => {
    if (!cur) return;
    const { multi: _m, ...t } = cur;
    t.class = classify(t.objects, toolSchemas);
    out.push(t);
    cur = undefined;
  };
  const open = (e: BinlogEvent, gtid: string | null, multi: boolean) => {
    cur = {
      gtid,
      serverId: Number(e.Server_id),
      start: { file: e.Log_name, pos: Number(e.Pos) },
      end: { file: e.Log_name, pos: Number(e.End_log_pos) },
      objects: [],
      class: 'application',
      multi,
    };
  };
  const add = (o: string) => {
    if (cur && !cur.objects.includes(o)) cur.objects.push(o);
  };
  for (const e of events) {
    const type = e.Event_type;
    const info = String(e.Info ?? '');
    if (type === 'Gtid' || type === 'Gtid_log_event' || type === 'Anonymous_Gtid') {
      close();
      // MariaDB: "BEGIN GTID x" opens a multi-event transaction, "GTID x" one DDL statement;
      // MySQL's GTID event is followed by a BEGIN query for multi-event transactions.
      open(e, gtidOf(info) ?? null, /^BEGIN\b/i.test(info));
      continue;
    }
    if (cur) cur.end = { file: e.Log_name, pos: Number(e.End_log_pos) };
    if (type === 'Query') {
      if (/^\s*BEGIN\s*$/i.test(info)) {
        if (!cur) open(e, null, true);
        else cur.multi = true;
        continue;
      }
      if (/^\s*(COMMIT|ROLLBACK)\b/i.test(info)) {
        close();
        continue;
      }
      if (!cur) open(e, null, false);
      for (const o of statementObjects(info)) add(o);
      if (!cur!.multi) close();
      continue;
    }
    if (type === 'Table_map') {
      const t = /\(([^)]+)\)\s*$/.exec(info)?.[1];
      if (t) add(t.replace(/`/g, ''));
      continue;
    }
    if (type === 'Xid' || type === 'XA_prepare') close();
    // Rotate, Format_desc, Gtid_list, Binlog_checkpoint, Previous_gtids, Annotate_rows,
    // row events (their Table_map names the table), Intvar/Rand/User_var: not writes of their own.
  }
  return out;
}

function cmpFile(files: string[], a: string, b: string): number {
  const ia = files.indexOf(a);
  const ib = files.indexOf(b);
  if (ia >= 0 && ib >= 0) return ia - ib;
  return a.localeCompare(b);
}

/** a before b (same file: by position). */
export function coordBefore(files: string[], a: Coord, b: Coord): boolean {
  const c = cmpFile(files, a.file, b.file);
  return c < 0 || (c === 0 && a.pos < b.pos);
}

const PRIV_HINT =
  'SHOW BINLOG EVENTS needs BINLOG MONITOR on MariaDB ≥ 10.5.2 (REPLICATION SLAVE before), REPLICATION SLAVE on MySQL; SHOW BINARY LOGS needs BINLOG MONITOR / REPLICATION CLIENT';

/** Current binlog coordinates (SHOW MASTER STATUS / SHOW BINARY LOG STATUS). */
export async function currentCoord(a: MysqlAdapter): Promise<Coord> {
  const p = await a.position();
  if (!p.file || p.pos === null)
    throw new StepError(
      'BINLOG_UNREADABLE',
      `${a.label}: ${a.sql.binlogStatus} returned no binary log position — binary logging is off, or ${a.user} lacks BINLOG MONITOR/REPLICATION CLIENT`,
    );
  return { file: p.file, pos: p.pos };
}

/** The transactions written between two coordinates of one server (to: now). */
export async function writesBetween(
  a: MysqlAdapter,
  from: Coord,
  to?: Coord,
  o: ReaderOptions = {},
): Promise<BinlogWrites> {
  const end = to ?? (await currentCoord(a));
  const maxEvents = o.maxEvents ?? 200_000;
  const batch = o.batch ?? 2000;
  let files: string[];
  try {
    files = (await a.binaryLogs()).map((l) => l.name);
  } catch (e) {
    throw privilegeError(a, e);
  }
  const i0 = files.indexOf(from.file);
  const i1 = files.indexOf(end.file);
  if (i0 < 0)
    throw new StepError(
      'BINLOG_PURGED',
      `${a.label}: binary log ${from.file} is no longer on the server (purged or reset) — cannot tell what was written since ${from.file}:${from.pos}; keep binlogs longer (binlog retention)`,
      { from, to: end },
    );
  const events: BinlogEvent[] = [];
  let truncated = false;
  const last = i1 < 0 ? files.length - 1 : i1;
  outer: for (let i = i0; i <= last; i++) {
    const file = files[i]!;
    let pos = i === i0 ? from.pos : 4;
    for (;;) {
      if (file === end.file && pos >= end.pos) break;
      let rows: BinlogEvent[];
      try {
        rows = await a.binlogEvents(file, pos, batch);
      } catch (e) {
        throw privilegeError(a, e);
      }
      for (const r of rows) {
        if (file === end.file && Number(r.Pos) >= end.pos) break outer;
        events.push(r);
        if (events.length >= maxEvents) {
          truncated = true;
          break outer;
        }
      }
      if (rows.length < batch) break;
      pos = Number(rows.at(-1)!.End_log_pos);
    }
  }
  return {
    from,
    to: end,
    transactions: groupTransactions(events, o.toolSchemas ?? ['cutover']),
    rotations: Math.max(0, last - i0),
    truncated,
  };
}

function privilegeError(a: MysqlAdapter, e: unknown): unknown {
  const code = (e as StepError).code;
  if (code === 'DB_PRIVILEGE_MISSING' || code === 'DB_ACCESS_DENIED')
    return new StepError(
      'DB_PRIVILEGE_MISSING',
      `${a.label}: cannot read the binary log as ${a.user} (${(e as Error).message.replace(/^.*?: /, '')}) — ${PRIV_HINT}`,
      undefined,
      e,
    );
  return e;
}

export const isServiceWrite = (t: BinlogTxn) => t.class === 'service';

/** Everything but service writes: what the guards refuse. */
export function nonService(w: BinlogWrites): BinlogTxn[] {
  return w.transactions.filter((t) => t.class !== 'service');
}

function objectsText(ts: readonly BinlogTxn[], limit = 5): string {
  const seen: string[] = [];
  for (const t of ts)
    for (const o of t.objects) if (!seen.includes(o)) seen.push(o.startsWith('mysql:') ? o.slice(6) : o);
  const uniq = [...new Set(seen)];
  return uniq.length > limit ? `${uniq.slice(0, limit).join(', ')}, …` : uniq.join(', ');
}

function gtidsText(ts: readonly BinlogTxn[], limit = 5): string {
  const g = ts.map((t) => t.gtid ?? `${t.start.file}:${t.start.pos}`);
  return g.length > limit ? `${g.slice(0, 2).join(', ')}, … ${g.at(-1)}` : g.join(', ');
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

/**
 * "2 service writes (mysql.rds_heartbeat2) ignored; 1 application write to shop.orders (0-1-1043)"
 * — what was seen, each class named with its objects and transactions.
 */
export function describeWrites(w: BinlogWrites): string {
  const by = (c: WriteClass) => w.transactions.filter((t) => t.class === c);
  const svc = by('service');
  const tool = by('tool');
  const app = by('application');
  const more = w.truncated ? 'at least ' : '';
  const parts: string[] = [];
  if (app.length)
    parts.push(
      `${more}${plural(app.length, 'application write')} to ${objectsText(app)} (${gtidsText(app)})`,
    );
  if (tool.length)
    parts.push(`${more}${plural(tool.length, 'tool write')} to ${objectsText(tool)} (${gtidsText(tool)})`);
  if (svc.length) parts.push(`${plural(svc.length, 'service write')} (${objectsText(svc)}) ignored`);
  if (w.rotations) parts.push(`${plural(w.rotations, 'binlog rotation')} ignored`);
  return parts.join('; ') || 'no writes';
}

/**
 * Which of `txns` (written on `from`) the server `to` lacks. By GTID where the transactions carry
 * one (MariaDB always does, also when replication itself runs by file/position); otherwise by the
 * coordinates `to` has executed while replicating from `from`. Unknowable → counted as lacking.
 */
export async function lackingOn(
  to: MysqlAdapter,
  from: MysqlAdapter,
  txns: readonly BinlogTxn[],
): Promise<BinlogTxn[]> {
  if (!txns.length) return [];
  let have: string | undefined;
  const all = async () => {
    if (have !== undefined) return have;
    if (to.flavor.vendor === 'mysql') have = (await to.variables(['gtid_executed'])).gtid_executed ?? '';
    else {
      const v = await to.variables(['gtid_binlog_state', 'gtid_slave_pos']);
      have = [v.gtid_binlog_state, v.gtid_slave_pos].filter(Boolean).join(',');
    }
    return have;
  };
  const st = txns.some((t) => !t.gtid) ? await to.replicaStatus().catch(() => undefined) : undefined;
  const executed =
    st && st.sourceServerId === from.server.serverId && st.relaySourceLogFile && st.execSourceLogPos !== null
      ? { file: st.relaySourceLogFile, pos: st.execSourceLogPos }
      : undefined;
  const files = executed ? (await from.binaryLogs()).map((l) => l.name) : [];
  const out: BinlogTxn[] = [];
  for (const t of txns) {
    if (t.gtid) {
      if (!hasTransactions(to.flavor.vendor, await all(), t.gtid)) out.push(t);
    } else if (!executed || coordBefore(files, executed, t.end)) out.push(t);
  }
  return out;
}

export function writesText(ts: readonly BinlogTxn[]): string {
  return `${plural(ts.length, 'application write')} to ${objectsText(ts)} (${gtidsText(ts)})`;
}
