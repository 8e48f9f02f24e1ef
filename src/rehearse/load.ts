// Canary load for rehearsals: writers insert numbered rows through the application's DNS name with
// the application's account, re-resolving the name whenever they reconnect, exactly as an app
// would. Every acknowledged insert is remembered so none can be lost silently.
import type { Connection } from 'mysql2/promise';
import { mysqlError } from '../adapters/mysql.js';
import { resolveHost } from '../adapters/resolve.js';
import { InputError } from '../errors.js';
import type { DatabaseConfig } from '../runbook/schema.js';

export interface Ack {
  writer: number;
  seq: number;
  at: number;
  address: string;
  /** @@server_id of the server that took it: behind a proxy the address never changes. */
  serverId?: number;
}

export interface LoadResult {
  acknowledged: number;
  failedAttempts: number;
  reads: number;
  /** First failed write → first write accepted by the new primary (ms), if a switch happened. */
  writeUnavailableMs?: number;
  firstFailureAt?: number;
  firstNewAckAt?: number;
  addresses: string[];
  acks: Ack[];
}

export const DEFAULT_TABLE = 'cutover_canary';

/** Errors a writer retrying cannot mend (mysqlError's codes): the rehearsal must not start. */
const HOPELESS = new Set([
  'DB_ACCESS_DENIED',
  'DB_ACCOUNT_LOCKED',
  'DB_BAD_SCHEMA',
  'DB_HOST_NOT_FOUND',
  'DB_PRIVILEGE_MISSING',
  'DB_READ_ONLY',
  'ER_NO_SUCH_TABLE',
]);

/** Creates the canary table on the old primary; returns that server's @@server_id (where the load must start). */
export async function createCanaryTable(db: DatabaseConfig, table: string): Promise<number> {
  const mysql = await import('mysql2/promise');
  const c = await mysql.createConnection(connOpts(db, (await resolveHost(db.host, db.resolvers)).address));
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS \`${table}\` (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT NOT NULL, seq INT NOT NULL, run_id VARCHAR(80) NOT NULL, at DATETIME(6) NOT NULL, UNIQUE KEY (run_id, writer, seq))`,
    );
    const [rows] = await c.query('SELECT @@server_id AS id');
    return Number((rows as { id: number }[])[0]?.id);
  } finally {
    await c.end().catch(() => {});
  }
}

function connOpts(db: DatabaseConfig, address: string) {
  return {
    host: address,
    port: db.port,
    user: db.user,
    ...(db.password !== undefined ? { password: db.password } : {}),
    ...(db.database ? { database: db.database } : {}),
    connectTimeout: 1000,
  };
}

export class CanaryLoad {
  private stopped = false;
  private readonly acks: Ack[] = [];
  private failures: number[] = [];
  private lastError: unknown;
  /** @@server_id of the first server a writer reached, written to or not. */
  private reached: number | undefined;
  private reads = 0;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly db: DatabaseConfig,
    private readonly table: string,
    private readonly runId: string,
    private readonly writers: number,
    private readonly oldAddress: string,
    /** false: a pooled client that keeps its connection whatever DNS says, resolving only to reconnect. */
    private readonly followTtl = true,
    /** Pause after each acknowledged write (ms): 0 writes flat out, as rehearsals do. */
    private readonly pauseMs = 0,
  ) {}

  /** Acknowledged writes so far (the load keeps running). */
  get acknowledged(): number {
    return this.acks.length;
  }

  start(): void {
    for (let w = 0; w < this.writers; w++) this.loops.push(this.writer(w));
  }

  /**
   * Resolves at the first acknowledged write on `start` (the old primary). Without one the rehearsal
   * would measure nothing, so it fails before the run: when the application's name leads elsewhere
   * (an earlier run left the environment cut over); at once on an error retrying cannot mend (a
   * refused login or grant, a missing schema or table, an unknown host); else after `withinMs`.
   */
  async firstWrite(withinMs: number, start: { serverId: number; name: string }): Promise<void> {
    const until = performance.now() + withinMs;
    const refuse = (what: string, cause?: unknown) =>
      new InputError(
        'REHEARSAL_LOAD',
        `the rehearsal's canary load ${what}; the cutover did not start`,
        cause,
      );
    while (this.acks.length === 0 || this.reached !== start.serverId) {
      if (this.reached !== undefined && this.reached !== start.serverId)
        throw refuse(
          `reaches server_id ${this.reached}, not "${start.name}" (server_id ${start.serverId}): an earlier run left this environment cut over — put it back first (the sandbox: cutover sandbox reset)`,
        );
      const e = this.lastError === undefined ? undefined : mysqlError(this.db, this.lastError, 'writing');
      if (
        e &&
        (HOPELESS.has(e.code) || HOPELESS.has(String(e.details?.mysqlCode)) || performance.now() > until)
      )
        throw refuse(`cannot write (${e.message})`, e);
      if (performance.now() > until) throw refuse(`wrote nothing within ${Math.round(withinMs / 1000)} s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async writer(w: number): Promise<void> {
    const mysql = await import('mysql2/promise');
    let conn: Connection | undefined;
    let address = '';
    let expires = 0;
    let seq = 0;
    let serverId: number | undefined;
    while (!this.stopped) {
      try {
        if (!conn || (this.followTtl && Date.now() > expires)) {
          // Like a pooled app: look the name up again when reconnecting or when the TTL ran out.
          const r = await resolveHost(this.db.host, this.db.resolvers);
          if (!conn || r.address !== address) {
            await conn?.end().catch(() => {});
            conn = undefined;
            address = r.address;
            conn = await mysql.createConnection(connOpts(this.db, address));
            // Which server this connection reached: a proxy flip moves it without moving the address.
            const [rows] = await conn.query('SELECT @@server_id AS id');
            serverId = Number((rows as { id: number }[])[0]?.id);
            this.reached ??= serverId;
          }
          expires = r.expires;
        }
        seq++;
        await conn.query(
          `INSERT INTO \`${this.table}\` (writer, seq, run_id, at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))`,
          [w, seq, this.runId],
        );
        this.acks.push({ writer: w, seq, at: performance.now(), address, ...(serverId ? { serverId } : {}) });
        if (seq % 20 === 0) {
          await conn.query(`SELECT COUNT(*) FROM \`${this.table}\` WHERE run_id = ? AND writer = ?`, [
            this.runId,
            w,
          ]);
          this.reads++;
        }
        if (this.pauseMs) await new Promise((r) => setTimeout(r, this.pauseMs));
      } catch (e) {
        this.lastError = e;
        this.failures.push(performance.now());
        await conn?.end().catch(() => {});
        conn = undefined;
        expires = 0;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await conn?.end().catch(() => {});
  }

  async stop(): Promise<LoadResult> {
    this.stopped = true;
    await Promise.all(this.loops);
    const firstFailureAt = this.failures[0];
    // The old server: the one that took the first write (the load starts before the run).
    const oldServer = this.acks[0]?.serverId;
    const firstNew =
      firstFailureAt === undefined
        ? undefined
        : this.acks.find(
            (a) =>
              a.at > firstFailureAt &&
              (a.address !== this.oldAddress || (oldServer !== undefined && a.serverId !== oldServer)),
          );
    return {
      acknowledged: this.acks.length,
      failedAttempts: this.failures.length,
      reads: this.reads,
      ...(firstFailureAt !== undefined && firstNew
        ? { writeUnavailableMs: firstNew.at - firstFailureAt, firstFailureAt, firstNewAckAt: firstNew.at }
        : {}),
      addresses: [...new Set(this.acks.map((a) => a.address))],
      acks: this.acks,
    };
  }
}

/** Row-by-row check on the new primary: every acknowledged (writer, seq) must be there. */
export async function countLostWrites(
  db: DatabaseConfig,
  table: string,
  runId: string,
  acks: Ack[],
): Promise<{ lost: number; missing: Ack[] }> {
  const mysql = await import('mysql2/promise');
  const c = await mysql.createConnection(connOpts(db, (await resolveHost(db.host, db.resolvers)).address));
  try {
    const [rows] = await c.query(`SELECT writer, seq FROM \`${table}\` WHERE run_id = ?`, [runId]);
    const present = new Set((rows as { writer: number; seq: number }[]).map((r) => `${r.writer}:${r.seq}`));
    const missing = acks.filter((a) => !present.has(`${a.writer}:${a.seq}`));
    return { lost: missing.length, missing: missing.slice(0, 20) };
  } finally {
    await c.end().catch(() => {});
  }
}
