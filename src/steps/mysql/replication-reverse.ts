// Reverse replication: the old primary replicates from the new one, so writes taken after the
// cutover also land on the old side and a rollback past the point of no return loses nothing.
// The replication account is a runbook database entry: its password is resolved from a secret
// reference like every other database password (and redacted); its host/port are the new primary's
// address as the old server sees it.
import { z } from 'zod';
import type { MysqlAdapter } from '../../adapters/mysql.js';
import { gtidIncludes, type ReplicaStatus } from '../../adapters/mysql-flavor.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { formatMs, StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { DbName, db, ms } from './common.js';

const Params = z
  .object({
    source: DbName.describe('the new primary to replicate from (e.g. new)'),
    replica: DbName.describe('the server that will replicate from it (e.g. old, still frozen)'),
    replicationAccount: DbName.describe(
      'database entry whose user/password the replica logs into the source with (an account with REPLICATION SLAVE); its host/port are the source as the replica reaches it',
    ),
    sourceHost: z.string().min(1).optional().describe('override the address the replica connects to'),
    sourcePort: z.number().int().min(1).max(65535).optional(),
    ssl: z.boolean().default(false).describe('replicate over TLS'),
    timeout: Duration.default('30s').describe('how long the replication threads get to start'),
  })
  .strict();
type P = z.infer<typeof Params>;

interface Snap {
  /** Replication the replica had before (normally none: it was the primary). */
  previous: { sourceHost: string | null; sourcePort: number | null; running: boolean } | null;
  replicaPosition: string;
}

interface Out extends Record<string, unknown> {
  sourceHost: string;
  sourcePort: number;
  user: string;
  alreadyRunning: boolean;
}

function target(ctx: StepContext, p: P): { host: string; port: number; user: string; password: string } {
  const acct = ctx.database(p.replicationAccount);
  return {
    host: p.sourceHost ?? acct.host,
    port: p.sourcePort ?? acct.port,
    user: acct.user,
    password: acct.password ?? '',
  };
}

function healthy(st: ReplicaStatus | undefined, source: MysqlAdapter): boolean {
  return (
    !!st &&
    st.ioRunning &&
    st.sqlRunning &&
    !st.lastIoErrno &&
    !st.lastSqlErrno &&
    st.sourceServerId === source.server.serverId
  );
}

async function everything(a: MysqlAdapter): Promise<string> {
  if (a.flavor.vendor === 'mysql') return (await a.variables(['gtid_executed'])).gtid_executed ?? '';
  const v = await a.variables(['gtid_binlog_state', 'gtid_slave_pos']);
  return [v.gtid_binlog_state, v.gtid_slave_pos].filter(Boolean).join(',');
}

export const replicationReverse = defineKind<P, Snap, Out>({
  kind: 'mysql.replication.reverse',
  summary:
    'make the old primary replicate from the new one (GTID auto-position) so a rollback loses no writes',
  params: Params,
  outputs: ['sourceHost', 'sourcePort', 'user', 'alreadyRunning'],
  keepsRollbackSafe: true,
  validate(p, v) {
    if (p.source === p.replica) v.issue(['replica'], 'source and replica are the same database');
  },
  databases: (p) => [p.source, p.replica, p.replicationAccount],
  describe(p, snap) {
    const lines = [
      `would configure ${p.replica} to replicate from ${p.source}${p.sourceHost ? ` (${p.sourceHost}${p.sourcePort ? `:${p.sourcePort}` : ''})` : ''} with GTID auto-position, as ${p.replicationAccount}'s user`,
      `would start replication on ${p.replica} and wait up to ${formatMs(ms(p.timeout))} for it to run`,
    ];
    if (snap?.previous)
      lines.push(
        `  ${p.replica} already has replication configured (${snap.previous.sourceHost}:${snap.previous.sourcePort}): it would be replaced`,
      );
    lines.push(`  undo: stop and reset replication on ${p.replica}`);
    return lines;
  },
  async snapshot(ctx, p) {
    const r = await db(ctx, p.replica);
    const st = await r.replicaStatus();
    const v = await r.variables([r.sql.gtidVariable]);
    return {
      previous: st
        ? { sourceHost: st.sourceHost, sourcePort: st.sourcePort, running: st.ioRunning || st.sqlRunning }
        : null,
      replicaPosition: v[r.sql.gtidVariable] ?? '',
    };
  },
  async apply(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const t = target(ctx, p);
    const st = await r.replicaStatus();
    if (st && (st.ioRunning || st.sqlRunning)) {
      if (st.sourceServerId === s.server.serverId)
        return { sourceHost: t.host, sourcePort: t.port, user: t.user, alreadyRunning: true };
      throw new StepError(
        'REPLICA_BUSY',
        `${r.label} already replicates from ${st.sourceHost}:${st.sourcePort} (server_id ${st.sourceServerId}) — stop and reset that first`,
      );
    }
    await r.requirePrivilege('replication-admin', `configuring replication on ${p.replica}`);
    // Everything the replica has must already be on the source, or the two have diverged.
    const mine = (await r.variables([r.sql.gtidVariable]))[r.sql.gtidVariable] ?? '';
    const theirs = await everything(s);
    if (mine && !gtidIncludes(r.flavor.vendor, theirs, mine))
      throw new StepError(
        'DIVERGED',
        `${r.label} has transactions ${s.label} does not (${p.replica} at ${mine}; ${p.source} has ${theirs || 'none'}) — writes reached ${p.replica} after replication stopped; replicating back would conflict with them`,
      );
    const gtidStart =
      r.flavor.vendor === 'mariadb'
        ? ((await r.variables(['gtid_current_pos'])).gtid_current_pos ?? '')
        : undefined;
    const change = r.sql.changeSource({
      ...t,
      ssl: p.ssl,
      ...(gtidStart !== undefined ? { gtidStart } : {}),
    });
    await r.exec(
      change.sql,
      change.params,
      {
        action: 'configure',
        target: `replication on ${p.replica} from ${p.source} (${t.host}:${t.port} as ${t.user})`,
        detail: change.shown,
      },
      { op: 'change-source' },
    );
    await r.exec(
      r.sql.startReplica,
      [],
      { action: 'run', target: `${r.sql.startReplica} on ${p.replica}` },
      { op: 'start-replica' },
    );
    return { sourceHost: t.host, sourcePort: t.port, user: t.user, alreadyRunning: false };
  },
  async verify(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    await ctx.poll({
      what: `replication ${p.source} → ${p.replica} running`,
      timeoutMs: ms(p.timeout),
      intervalMs: 200,
      check: async () => {
        const st = await r.replicaStatus();
        if (!st)
          throw new StepError(
            'REVERSE_NOT_CONFIGURED',
            `${r.label}: replication is not configured after CHANGE SOURCE`,
          );
        if (healthy(st, s)) return { done: true };
        // A stopped thread with an error will not recover on its own (wrong GTID position, 1236).
        if ((st.ioState === 'No' && st.lastIoErrno) || (!st.sqlRunning && st.lastSqlErrno))
          throw new StepError(
            'REVERSE_REPLICATION_FAILED',
            `${r.label}: replication from ${p.source} stopped: ${st.lastIoErrno || st.lastSqlErrno} ${st.lastIoError || st.lastSqlError}`,
          );
        return {
          done: false,
          status: `IO ${st.ioState}, SQL ${st.sqlRunning ? 'Yes' : 'No'}${st.lastIoError ? `: ${st.lastIoError}` : ''}`,
        };
      },
    });
  },
  async isRollbackSafe(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    return healthy(await r.replicaStatus(), s);
  },
  async undo(ctx, p, snap) {
    const r = await db(ctx, p.replica);
    const st = await r.replicaStatus();
    if (!st) return;
    if (st.ioRunning || st.sqlRunning)
      await r.exec(
        r.sql.stopReplica,
        [],
        { action: 'run', target: `${r.sql.stopReplica} on ${p.replica}`, detail: 'undo reverse replication' },
        { op: 'stop-replica' },
      );
    for (const sql of r.sql.resetReplica)
      await r.exec(
        sql,
        [],
        { action: 'run', target: `${sql} on ${p.replica}`, detail: 'forget the reverse replication' },
        { op: 'reset-replica' },
      );
    if (snap.previous)
      ctx.warn(
        `${r.label} had replication configured before (${snap.previous.sourceHost}:${snap.previous.sourcePort}); it was replaced and is not restored (its password is not known to the tool)`,
      );
    const after = await r.replicaStatus();
    if (after && (after.ioRunning || after.sqlRunning || after.sourceHost))
      throw new StepError(
        'REVERSE_NOT_RESET',
        `${r.label}: replication still configured after undo (${after.sourceHost}:${after.sourcePort})`,
      );
  },
});
