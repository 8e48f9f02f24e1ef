import { z } from 'zod';
import type { MysqlAdapter } from '../../adapters/mysql.js';
import { gtidIncludes, type ReplicaStatus } from '../../adapters/mysql-flavor.js';
import { defineKind } from '../../engine/types.js';
import { formatMs, StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { DbName, db, ms, notReplicaError } from './common.js';
import {
  beat,
  ensureHeartbeat,
  type HeartbeatTable,
  heartbeatLag,
  readBeat,
  sourceNow,
} from './heartbeat.js';

const Params = z.lazy(() =>
  z
    .object({
      replica: DbName,
      source: DbName.optional().describe(
        'where heartbeats are written (the replica’s source); without it only Seconds_Behind_* is used',
      ),
      maxLagSeconds: z.number().min(0).default(1),
      timeout: Duration.default('60s').describe('how long to wait for the lag to come down to maxLagSeconds'),
      interval: Duration.default('500ms').describe('time between heartbeats / readings'),
      heartbeat: z
        .object({
          schema: z
            .string()
            .regex(/^[\w$]+$/)
            .default('cutover')
            .describe('schema of the heartbeat table on the source (created if missing)'),
          table: z
            .string()
            .regex(/^[\w$]+$/)
            .default('heartbeat'),
          create: z
            .boolean()
            .default(true)
            .describe('create and stamp the table; false: only read one kept fresh by pt-heartbeat'),
        })
        .strict()
        .default({ schema: 'cutover', table: 'heartbeat', create: true }),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

interface Out extends Record<string, unknown> {
  lagSeconds: number;
  method: 'heartbeat' | 'gtid' | 'seconds-behind';
  secondsBehind: number | null;
  ioRunning: boolean;
  sqlRunning: boolean;
}

function threads(st: ReplicaStatus): string {
  return `IO thread ${st.ioState}, SQL thread ${st.sqlRunning ? 'Yes' : 'No'}, Seconds_Behind ${st.secondsBehind ?? 'NULL'}`;
}

/**
 * A stopped thread does not restart by itself: fail now, with the server's own error, whatever
 * Seconds_Behind says (it reads 0 or NULL with a stopped IO thread, depending on the server).
 */
export function threadFailure(r: Pick<MysqlAdapter, 'label'>, st: ReplicaStatus): StepError | undefined {
  if (!st.sqlRunning)
    return new StepError(
      'REPLICA_SQL_STOPPED',
      `${r.label}: the replication SQL thread is not running (${threads(st)})${st.lastSqlError ? `: ${st.lastSqlErrno} ${st.lastSqlError}` : ''} — changes from the source are not being applied`,
      { ...st },
    );
  if (st.ioState === 'No')
    return new StepError(
      'REPLICA_IO_STOPPED',
      `${r.label}: the replication IO thread is not running (${threads(st)})${st.lastIoError ? `: ${st.lastIoErrno} ${st.lastIoError}` : ''} — Seconds_Behind cannot be trusted, new changes are not being received`,
      { ...st },
    );
  return undefined;
}

/** What these params write, in one line; undefined when they only read. */
function heartbeatWrites(p: P): string | undefined {
  if (!p.source || !p.heartbeat.create) return undefined;
  const t = `${p.heartbeat.schema}.${p.heartbeat.table}`;
  return `writes on ${p.source}: CREATE DATABASE/TABLE ${t} if missing, then REPLACE INTO ${t} (server_id, UTC_TIMESTAMP(6)) every ${formatMs(ms(p.interval))} (not while ${p.source} is read-only); replicated to its replicas`;
}

export const replicaLag = defineKind<P, undefined, Out>({
  kind: 'mysql.replica-lag',
  summary:
    'check replication health and wait until the replica lag (heartbeat, UTC) is at most maxLagSeconds',
  params: Params,
  readOnly: true,
  // Not a pure read: the heartbeat is written on the source (replicated to every replica).
  writes: {
    tag: 'heartbeat',
    summary:
      'writes on the source: creates a heartbeat schema and table if missing, stamps one row per poll (heartbeat.create: false, or no source: reads only)',
    describe: (p) => heartbeatWrites(p),
  },
  outputs: ['lagSeconds', 'method', 'secondsBehind', 'ioRunning', 'sqlRunning'],
  databases: (p) => [p.replica, ...(p.source ? [p.source] : [])],
  describe: (p) => {
    const writes = heartbeatWrites(p);
    return [
      `would check that ${p.replica} replicates (IO and SQL threads running) with lag ≤ ${p.maxLagSeconds}s${p.source ? ` (heartbeat ${p.heartbeat.schema}.${p.heartbeat.table} on ${p.source})` : ' (Seconds_Behind)'}, waiting up to ${formatMs(ms(p.timeout))}`,
      ...(writes ? [`  ${writes}`] : []),
    ];
  },
  async apply(ctx, p) {
    const r = await db(ctx, p.replica);
    const s = p.source ? await db(ctx, p.source) : undefined;
    const first = await r.replicaStatus();
    if (!first) throw notReplicaError(r);
    if (s && first.sourceServerId !== null && first.sourceServerId !== s.server.serverId)
      throw new StepError(
        'REPLICA_OF_ANOTHER_SOURCE',
        `${r.label} replicates from server_id ${first.sourceServerId} (${first.sourceHost}:${first.sourcePort}), not from ${s.label} (server_id ${s.server.serverId}) — check source/replica`,
      );
    const h: HeartbeatTable = { schema: p.heartbeat.schema, table: p.heartbeat.table };
    // A frozen source must stay still (the write fence is checked on its position): no stamps then.
    const frozen = s ? (await s.readOnly()).readOnly : false;
    let canBeat = false;
    if (s && !frozen && p.heartbeat.create) canBeat = await ensureHeartbeat(s, h);
    let lastWritten: string | undefined;
    if (s && canBeat) lastWritten = await beat(s, h);
    let last: Out | undefined;
    let note = '';

    const measure = async (): Promise<{ done: boolean; value?: Out; status?: string }> => {
      const st = await r.replicaStatus({ signal: ctx.signal });
      if (!st) throw notReplicaError(r);
      const fail = threadFailure(r, st);
      if (fail) throw fail;
      let lag: number | undefined;
      let method: Out['method'] = canBeat ? 'heartbeat' : 'seconds-behind';
      if (s && frozen) {
        // Nothing moves on the source: the replica is caught up when it has the source's position.
        const [pos, rep] = await Promise.all([
          s.position(),
          r.variables([r.flavor.vendor === 'mariadb' ? 'gtid_slave_pos' : 'gtid_executed']),
        ]);
        const have = Object.values(rep)[0] ?? '';
        if (pos.gtid) {
          method = 'gtid';
          lag = gtidIncludes(r.flavor.vendor, have, pos.gtid) ? 0 : undefined;
          note = lag === 0 ? 'has the frozen source’s position' : `at ${have || '∅'}, source at ${pos.gtid}`;
        }
      } else if (s) {
        const onReplica = await readBeat(r, h, s.server.serverId);
        const now = await sourceNow(s);
        const onSource = lastWritten ? undefined : await readBeat(s, h, s.server.serverId);
        const reading = heartbeatLag({
          sourceNow: now,
          ...(lastWritten ? { written: lastWritten } : {}),
          ...(onSource ? { onSource } : {}),
          ...(onReplica ? { onReplica } : {}),
          freshWithinSec: Math.max(5, (ms(p.interval) / 1000) * 4),
        });
        note = reading.why;
        if (reading.lag !== undefined) {
          lag = reading.lag;
          method = 'heartbeat';
        }
        // The next stamp goes out after the read, so it has a whole interval to arrive.
        if (canBeat) lastWritten = (await beat(s, h)) ?? lastWritten;
      }
      // Our own heartbeat is the measure once we write one: waiting for it beats trusting Seconds_Behind.
      if (lag === undefined && method !== 'gtid' && !canBeat) {
        lag = st.ioState === 'Yes' ? (st.secondsBehind ?? undefined) : undefined;
        method = 'seconds-behind';
      }
      last = {
        lagSeconds: lag === undefined ? Number.NaN : Math.round(lag * 1000) / 1000,
        method,
        secondsBehind: st.secondsBehind,
        ioRunning: st.ioRunning,
        sqlRunning: st.sqlRunning,
      };
      const status = `lag ${lag === undefined ? 'unknown' : `${lag.toFixed(3)}s`} (${method}${note ? `: ${note}` : ''}; ${threads(st)})`;
      return { done: lag !== undefined && lag <= p.maxLagSeconds, value: last, status };
    };

    // Wait on the replica's own connection: in dry run it looks once and records the wait.
    const w = await r.waitFor({
      what: `replica lag on ${p.replica} ≤ ${p.maxLagSeconds}s`,
      timeoutMs: ms(p.timeout),
      intervalMs: ms(p.interval),
      signal: ctx.signal,
      check: measure,
      onProgress: (status, deadline) => ctx.progress({ label: `${p.replica}: ${status}`, deadline }),
    });
    if (w.done) return w.value!;
    if (w.waited || !last)
      throw new StepError(
        'REPLICA_LAG_TOO_HIGH',
        `${r.label}: ${w.status ?? 'lag unknown'} — still above ${p.maxLagSeconds}s after ${formatMs(ms(p.timeout))}`,
        last ? { ...last } : undefined,
      );
    return last;
  },
});
