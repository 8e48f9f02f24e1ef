// pt-heartbeat's method: a row on the source stamped with the source's UTC clock, read back on the
// replica. Lag is computed in the source's clock only (source "now" minus the newest stamp the
// replica has), so a skewed replica clock cannot invent or hide lag. Seconds_Behind_* is a fallback:
// it reads 0 while the IO thread is behind and NULL when a thread is stopped.
import type { MysqlAdapter } from '../../adapters/mysql.js';

export interface HeartbeatTable {
  schema: string;
  table: string;
}

export const ident = (s: string): string => `\`${s.replace(/`/g, '``')}\``;
export const tableRef = (h: HeartbeatTable): string => `${ident(h.schema)}.${ident(h.table)}`;

/** "2026-01-02 03:04:05.123456" or pt-heartbeat's "2026-01-02T03:04:05.123456" (UTC) → epoch µs. */
export function parseUtcMicros(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?/.exec(s.trim());
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  const frac = (m[7] ?? '').padEnd(6, '0');
  return ms * 1000 + Number(frac);
}

export interface LagReading {
  /** Seconds the replica is behind, in the source's clock; undefined when it cannot be told. */
  lag: number | undefined;
  why: string;
}

/**
 * sourceNow: the source's UTC clock when the replica was read. written: the stamp this run wrote
 * last (if it did). onSource: the stamp currently on the source. onReplica: the stamp the replica has.
 */
export function heartbeatLag(o: {
  sourceNow: string;
  written?: string;
  onSource?: string;
  onReplica?: string;
  freshWithinSec: number;
}): LagReading {
  const now = parseUtcMicros(o.sourceNow);
  const rep = o.onReplica ? parseUtcMicros(o.onReplica) : undefined;
  if (now === undefined) return { lag: undefined, why: 'cannot read the source clock' };
  if (rep === undefined) return { lag: undefined, why: 'no heartbeat on the replica yet' };
  const w = o.written ? parseUtcMicros(o.written) : undefined;
  if (w !== undefined) {
    // Our own fresh stamp arrived: caught up with everything up to it.
    if (rep >= w) return { lag: 0, why: 'latest heartbeat replicated' };
    return { lag: Math.max(0, (now - rep) / 1e6), why: 'heartbeat not yet replicated' };
  }
  // Someone else's heartbeat (pt-heartbeat, or we could not write): only meaningful while fresh.
  const src = o.onSource ? parseUtcMicros(o.onSource) : undefined;
  if (src === undefined) return { lag: undefined, why: 'no heartbeat on the source' };
  if ((now - src) / 1e6 > o.freshWithinSec)
    return { lag: undefined, why: `heartbeat on the source is ${((now - src) / 1e6).toFixed(1)}s old` };
  if (rep >= src) return { lag: Math.max(0, (now - src) / 1e6), why: 'existing heartbeat' };
  return { lag: Math.max(0, (now - rep) / 1e6), why: 'existing heartbeat' };
}

export async function ensureHeartbeat(a: MysqlAdapter, h: HeartbeatTable): Promise<boolean> {
  const exists = await a.query(
    'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [h.schema, h.table],
    {
      op: 'heartbeat-exists',
    },
  );
  if (exists.length) return true;
  await a.exec(`CREATE DATABASE IF NOT EXISTS ${ident(h.schema)}`, [], {
    action: 'create',
    target: `schema ${h.schema} on ${a.name}`,
    detail: 'for the heartbeat table',
  });
  const r = await a.exec(
    `CREATE TABLE IF NOT EXISTS ${tableRef(h)} (server_id INT UNSIGNED NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB`,
    [],
    {
      action: 'create',
      target: `table ${h.schema}.${h.table} on ${a.name}`,
      detail: 'heartbeat rows stamped in UTC, read on the replica',
    },
  );
  return r.applied;
}

/** Stamps the source's row; returns the stamp written, or undefined when only recorded (dry run). */
export async function beat(a: MysqlAdapter, h: HeartbeatTable): Promise<string | undefined> {
  const r = await a.exec(
    `REPLACE INTO ${tableRef(h)} (server_id, ts) VALUES (@@server_id, UTC_TIMESTAMP(6))`,
    [],
    {
      action: 'update',
      target: `heartbeat ${h.schema}.${h.table} on ${a.name}`,
      detail: 'UTC_TIMESTAMP(6)',
    },
  );
  if (!r.applied) return undefined;
  const [row] = await a.query<{ ts: string }>(
    `SELECT CAST(ts AS CHAR) AS ts FROM ${tableRef(h)} WHERE server_id = @@server_id`,
    [],
    {
      op: 'heartbeat-read',
    },
  );
  return row?.ts;
}

export async function readBeat(
  a: MysqlAdapter,
  h: HeartbeatTable,
  serverId: number,
): Promise<string | undefined> {
  try {
    const [row] = await a.query<{ ts: string }>(
      `SELECT CAST(ts AS CHAR) AS ts FROM ${tableRef(h)} WHERE server_id = ?`,
      [serverId],
      {
        op: 'heartbeat-read',
      },
    );
    return row?.ts ?? undefined;
  } catch (e) {
    // Not created yet, or not replicated yet.
    if (
      /ER_NO_SUCH_TABLE|ER_BAD_DB_ERROR/.test(
        String((e as { details?: { mysqlCode?: string } }).details?.mysqlCode),
      )
    )
      return undefined;
    throw e;
  }
}

export async function sourceNow(a: MysqlAdapter): Promise<string> {
  const [r] = await a.query<{ now: string }>('SELECT CAST(UTC_TIMESTAMP(6) AS CHAR) AS now', [], {
    op: 'clock',
  });
  return r!.now;
}
