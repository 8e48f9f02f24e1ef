// A client that inserts as fast as it can with the application's account: on the old server until it
// refuses with 1290 (read-only), then on the new one, retrying at once until it accepts. Every
// acknowledged insert is remembered, so the test can prove none was lost, and the first refusal and
// the first acceptance on the new server give the write-blocked window as a client sees it.
import type { Connection } from 'mysql2/promise';
import { connect, type Env } from './harness.js';

export const WRITES_TABLE = 'cutover_writes';

export interface Ack {
  writer: number;
  seq: number;
  server: 'old' | 'new';
  at: number;
}

export interface WriterResult {
  acks: Ack[];
  /** performance.now() of the first write the old server refused. */
  firstFailureAt?: number;
  /** performance.now() of the first write the new server accepted. */
  firstNewAckAt?: number;
  windowMs?: number;
  failures: number;
  otherErrors: string[];
}

/** Created by the tool's account on the old server (the app account cannot CREATE); replicated to new. */
export async function createWritesTable(env: Env): Promise<void> {
  const c = await connect(env, 'old');
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT NOT NULL, seq INT NOT NULL, server VARCHAR(8) NOT NULL, UNIQUE KEY (writer, seq))`,
    );
  } finally {
    await c.end();
  }
}

export class Writer {
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly acks: Ack[] = [];
  private failures = 0;
  private firstFailureAt: number | undefined;
  private readonly otherErrors: string[] = [];
  private conns: Connection[] = [];
  /** Resolves once every writer has had a write acknowledged (the load is really on). */
  readonly started: Promise<void>;
  private markStarted!: () => void;
  private startedCount = 0;

  constructor(
    private readonly env: Env,
    private readonly writers = 1,
  ) {
    this.started = new Promise((r) => {
      this.markStarted = r;
    });
  }

  async start(): Promise<void> {
    for (let w = 0; w < this.writers; w++) {
      // Both connections open before the cutover: the switch costs no connect.
      const [o, n] = await Promise.all([connect(this.env, 'old', 'app'), connect(this.env, 'new', 'app')]);
      this.conns.push(o, n);
      this.loops.push(this.loop(w, o, n));
    }
  }

  private async loop(w: number, oldC: Connection, newC: Connection): Promise<void> {
    let target: 'old' | 'new' = 'old';
    let seq = 0;
    let counted = false;
    while (!this.stopped) {
      const c = target === 'old' ? oldC : newC;
      const next = seq + 1;
      try {
        await c.query(`INSERT INTO ${WRITES_TABLE} (writer, seq, server) VALUES (?, ?, ?)`, [
          w,
          next,
          target,
        ]);
        seq = next;
        this.acks.push({ writer: w, seq, server: target, at: performance.now() });
        if (!counted) {
          counted = true;
          if (++this.startedCount === this.writers) this.markStarted();
        }
      } catch (e) {
        const errno = (e as { errno?: number }).errno;
        this.failures++;
        if (errno === 1290) {
          // Refused as read-only: the sequence number is reused, nothing was written.
          this.firstFailureAt ??= performance.now();
          target = 'new';
        } else {
          this.otherErrors.push(`${target}: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }
  }

  async stop(): Promise<WriterResult> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.conns.map((c) => c.end().catch(() => undefined)));
    const firstNew = this.acks.find((a) => a.server === 'new');
    return {
      acks: this.acks,
      ...(this.firstFailureAt !== undefined ? { firstFailureAt: this.firstFailureAt } : {}),
      ...(firstNew ? { firstNewAckAt: firstNew.at } : {}),
      ...(this.firstFailureAt !== undefined && firstNew
        ? { windowMs: firstNew.at - this.firstFailureAt }
        : {}),
      failures: this.failures,
      otherErrors: this.otherErrors.slice(0, 10),
    };
  }
}

/** Acknowledged inserts missing on the new primary. */
export async function lostWrites(env: Env, acks: Ack[]): Promise<Ack[]> {
  const c = await connect(env, 'new');
  try {
    const [rows] = await c.query(`SELECT writer, seq FROM ${WRITES_TABLE}`);
    const have = new Set((rows as { writer: number; seq: number }[]).map((r) => `${r.writer}:${r.seq}`));
    return acks.filter((a) => !have.has(`${a.writer}:${a.seq}`));
  } finally {
    await c.end();
  }
}
