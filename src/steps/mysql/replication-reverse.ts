// Reverse replication: the old primary replicates from the new one, so writes taken after the
// cutover also land on the old side and a rollback past the point of no return loses nothing.
// The replication account is a runbook database entry: its password is resolved from a secret
// reference like every other database password (and redacted); its host/port are the new primary's
// address as the old server sees it.
import { z } from 'zod';
import type { MysqlAdapter } from '../../adapters/mysql.js';
import {
  atLeast,
  gtidIncludes,
  gtidWaitReached,
  parseMariaGtids,
  posWaitReached,
  type ReplicaStatus,
  type Sql,
} from '../../adapters/mysql-flavor.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { formatMs, StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { type AccountState, Accounts, endSessionsOf, resolveAccounts, setLocked } from './accounts.js';
import {
  type BinlogTxn,
  type Coord,
  currentCoord,
  describeWrites,
  nonService,
  writesBetween,
  writesText,
} from './binlog.js';
import { applyReadOnly, DbName, db, ms } from './common.js';
import { checkReplicationAccount } from './replication-account.js';

// A binlog position from an earlier step's outputs; before that step ran (preflight), a placeholder.
const BinlogPos = z.preprocess(
  (v) => (typeof v === 'string' ? (/^\d+$/.test(v) ? Number(v) : undefined) : v),
  z.number().int().nullable().optional(),
);

const Params = z.lazy(() =>
  z
    .object({
      source: DbName.describe('the new primary to replicate from (e.g. new)'),
      replica: DbName.describe('the server that will replicate from it (e.g. old, still frozen)'),
      replicationAccount: DbName.describe(
        'database entry whose user/password the replica logs into the source with (an account with REPLICATION SLAVE); its host/port are the source as the replica reaches it',
      ),
      sourceHost: z.string().min(1).optional().describe('override the address the replica connects to'),
      sourcePort: z.number().int().min(1).max(65535).optional(),
      ssl: z.boolean().default(false).describe('replicate over TLS'),
      timeout: Duration.default('30s').describe(
        'how long the replication threads get to start; in undo, how long old gets to catch up with new',
      ),
      mode: z
        .enum(['gtid', 'position'])
        .optional()
        .describe(
          "gtid: GTID positioning; position: binary log file/position from startFile/startPos (GTID off). Default: how the source itself replicated from the replica (its stopped replication's Using_Gtid / Auto_Position)",
        ),
      startFile: z
        .string()
        .nullable()
        .optional()
        .describe(
          "the new primary's binlog file when it became writable: ${steps.<stop>.outputs.switchFile}",
        ),
      startPos: BinlogPos.describe('${steps.<stop>.outputs.switchPos}'),
      startGtid: z
        .string()
        .nullable()
        .optional()
        .describe('MariaDB: the GTID position then: ${steps.<stop>.outputs.switchGtid}'),
      frozenFile: z
        .string()
        .nullable()
        .optional()
        .describe(
          "the old primary's frozen coordinates (${steps.<stop>.outputs.sourceFile}/sourcePos): only application writes after them count as divergence",
        ),
      frozenPos: BinlogPos.describe('${steps.<stop>.outputs.sourcePos}'),
      fence: z
        .enum(['account-lock', 'read-only', 'none'])
        .optional()
        .describe(
          'undo: how the new primary is fenced before the reverse replication is removed. Default: account-lock when accounts are given, else read-only',
        ),
      accounts: Accounts,
      quiet: Duration.default('1s').describe(
        'undo: the new primary must take no application write for this long',
      ),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

interface Snap {
  /** Replication the replica had before (normally none: it was the primary). */
  previous: { sourceHost: string | null; sourcePort: number | null; running: boolean } | null;
  replicaPosition: string;
  /** Lock state of `accounts` on the replica (old): undo puts it back after new's fence replicated. */
  replicaAccounts?: AccountState[];
}

interface Out extends Record<string, unknown> {
  sourceHost: string;
  sourcePort: number;
  user: string;
  alreadyRunning: boolean;
  /** Where the reverse replication started: "file:pos" (position) or a GTID position. */
  startedAt: string;
  /** The tool's own service transactions at the start that were not replicated back (its ACCOUNT UNLOCK). */
  skipped: string[];
}

const modeOf = (p: P): 'gtid' | 'position' => p.mode ?? (p.startFile ? 'position' : 'gtid');

/**
 * Without `mode`: with the switch coordinates, the way the new primary itself replicated from the
 * old one (its stopped replication is still configured), so a GTID-off pair reverses by
 * file/position; without them, GTIDs (MariaDB always has them; MySQL with gtid_mode OFF is refused
 * at preflight).
 */
async function resolveMode(s: MysqlAdapter, p: P): Promise<'gtid' | 'position'> {
  if (p.mode) return p.mode;
  if (!p.startFile) return 'gtid';
  const st = await s.replicaStatus().catch(() => undefined);
  return st && st.gtidMode !== 'off' ? 'gtid' : 'position';
}
const fenceOf = (p: P): 'account-lock' | 'read-only' | 'none' =>
  p.fence ?? (p.accounts.length ? 'account-lock' : 'read-only');
const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** CHANGE MASTER/SOURCE at binlog coordinates (GTID off), or the RDS procedure that does it. */
export function changeSourceAt(
  r: MysqlAdapter,
  o: { host: string; port: number; user: string; password: string; ssl: boolean },
  at: Coord,
): Sql {
  const f = r.flavor;
  if (r.sql.procedures) {
    const proc =
      f.vendor === 'mysql' && (f.procedures.includes('rds_set_external_source') || atLeast(f, 8, 4))
        ? 'rds_set_external_source'
        : 'rds_set_external_master';
    return {
      sql: `CALL mysql.${proc}(?, ?, ?, ?, ?, ?, ?)`,
      params: [o.host, o.port, o.user, o.password, at.file, at.pos, o.ssl ? 1 : 0],
      shown: `CALL mysql.${proc}(${q(o.host)}, ${o.port}, ${q(o.user)}, '***', ${q(at.file)}, ${at.pos}, ${o.ssl ? 1 : 0})`,
    };
  }
  const mysql8 = f.vendor === 'mysql' && atLeast(f, 8, 0, 23);
  const P = mysql8 ? 'SOURCE' : 'MASTER';
  const head = mysql8 ? 'CHANGE REPLICATION SOURCE TO' : 'CHANGE MASTER TO';
  const tail = [
    `${P}_LOG_FILE=?`,
    `${P}_LOG_POS=${Math.floor(at.pos)}`,
    f.vendor === 'mariadb' ? 'MASTER_USE_GTID=no' : `${P}_AUTO_POSITION=0`,
    ...(o.ssl ? [`${P}_SSL=1`] : f.vendor === 'mysql' && atLeast(f, 8) ? [`GET_${P}_PUBLIC_KEY=1`] : []),
  ];
  return {
    sql: `${head} ${P}_HOST=?, ${P}_PORT=?, ${P}_USER=?, ${P}_PASSWORD=?, ${tail.join(', ')}`,
    params: [o.host, o.port, o.user, o.password, at.file],
    shown: `${head} ${P}_HOST=${q(o.host)}, ${P}_PORT=${o.port}, ${P}_USER=${q(o.user)}, ${P}_PASSWORD='***', ${tail.join(', ').replace('=?', `=${q(at.file)}`)}`,
  };
}

/**
 * Where reverse replication starts: the new primary's coordinates when it became writable, past the
 * run of service transactions right after them (the tool's ACCOUNT UNLOCK of the replicated lock,
 * rdsadmin heartbeats). Replicated back, that UNLOCK would reopen the frozen old primary.
 */
async function startAfterServiceWrites(
  s: MysqlAdapter,
  from: Coord,
): Promise<{ at: Coord; skipped: BinlogTxn[] }> {
  const seen = await writesBetween(s, from, undefined, { maxEvents: 5000 });
  const skipped: BinlogTxn[] = [];
  for (const t of seen.transactions) {
    if (t.class !== 'service') break;
    skipped.push(t);
  }
  return { at: skipped.at(-1)?.end ?? from, skipped };
}

/**
 * MariaDB without the switch position: per domain, the last of the replica's own transactions the
 * source has (its gtid_binlog_state entry for the replica's server_id), else the replica's
 * gtid_current_pos. The replica's own later writes there (rdsadmin heartbeats after the freeze) are
 * not in the source's binlog: starting from them fails with 1236.
 */
async function gtidStartFromSource(s: MysqlAdapter, r: MysqlAdapter): Promise<string> {
  const [cur, state] = await Promise.all([
    r.variables(['gtid_current_pos']).then((v) => parseMariaGtids(v.gtid_current_pos)),
    s.variables(['gtid_binlog_state']).then((v) => parseMariaGtids(v.gtid_binlog_state)),
  ]);
  return cur
    .map((g) => state.find((x) => x.domain === g.domain && x.server === r.server.serverId) ?? g)
    .map((g) => `${g.domain}-${g.server}-${g.seq}`)
    .join(',');
}

/** MariaDB: the GTID position with each skipped transaction's domain moved to it. */
export function gtidAfter(start: string, skipped: readonly BinlogTxn[]): string {
  const byDomain = new Map(parseMariaGtids(start).map((g) => [g.domain, `${g.domain}-${g.server}-${g.seq}`]));
  for (const t of skipped)
    if (t.gtid && /^\d+-\d+-\d+$/.test(t.gtid)) byDomain.set(Number(t.gtid.split('-')[0]), t.gtid);
  return [...byDomain.values()].join(',');
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

/** The kind's own static checks (also run by the mysql preflight wrapper). */
export async function reversePreflight(ctx: StepContext, p: P): Promise<void> {
  const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
  // M2: what the reverse replica needs, checked before the window instead of after the flip.
  const v = await s.variables(['log_bin', 'binlog_format', 'gtid_mode']);
  if (v.log_bin !== 'ON' && v.log_bin !== '1')
    throw new StepError(
      'REVERSE_NO_BINLOG',
      `${s.label} has binary logging off (log_bin=${v.log_bin ?? '?'}): ${p.replica} cannot replicate from it — turn it on (Aurora: binlog_format in the cluster parameter group, then reboot the writer)`,
    );
  const mode = await resolveMode(s, p);
  if (mode === 'gtid' && s.flavor.vendor === 'mysql') {
    const rv = await r.variables(['gtid_mode']);
    const off = [
      [s, v.gtid_mode],
      [r, rv.gtid_mode],
    ].filter(([, m]) => m !== 'ON') as [MysqlAdapter, string | null][];
    if (off.length)
      throw new StepError(
        'REVERSE_GTID_OFF',
        `${off.map(([a, m]) => `${a.label} has gtid_mode=${m ?? '?'}`).join('; ')}: GTID auto-position is impossible — use mode: position with startFile/startPos from mysql.replication.stop's switchFile/switchPos`,
      );
  }
  if (mode === 'position' && r.sql.procedures && r.flavor.procedures.length) {
    const has = ['rds_set_external_master', 'rds_set_external_source'].some((x) =>
      r.flavor.procedures.includes(x),
    );
    if (!has)
      throw new StepError(
        'REVERSE_NO_PROCEDURE',
        `${r.label} has no mysql.rds_set_external_master/source procedure visible to ${r.user}: reverse replication by file/position cannot be configured`,
      );
  }
  if (fenceOf(p) === 'read-only' && !s.sql.canSetReadOnly)
    throw new StepError(
      'READ_ONLY_UNSUPPORTED',
      `${s.label} is ${s.flavor.label}: SQL cannot set read_only there, so the rollback could not fence it — give accounts: (fence: account-lock)`,
    );
  if (fenceOf(p) === 'account-lock') await resolveAccounts(s, p.accounts);
  await currentCoord(s);
  await checkReplicationAccount(ctx, s, p.replicationAccount);
}

export const replicationReverse = defineKind<P, Snap, Out>({
  kind: 'mysql.replication.reverse',
  summary:
    'make the old primary replicate from the new one (GTID or file/position) so a rollback loses no writes',
  params: Params,
  outputs: ['sourceHost', 'sourcePort', 'user', 'alreadyRunning', 'startedAt', 'skipped'],
  keepsRollbackSafe: true,
  // The start/frozen coordinates come from mysql.replication.stop's outputs; preflight needs none.
  preflightReads: [
    'source',
    'replica',
    'replicationAccount',
    'sourceHost',
    'sourcePort',
    'ssl',
    'mode',
    'fence',
    'accounts',
  ],
  validate(p, v) {
    if (p.source === p.replica) v.issue(['replica'], 'source and replica are the same database');
    if (p.mode === 'position' && (!p.startFile || p.startPos === undefined))
      v.issue(
        ['startFile'],
        "mode: position needs startFile and startPos: the new primary's coordinates when it became writable (${steps.<stop>.outputs.switchFile} / switchPos)",
      );
    if (fenceOf(p) === 'account-lock' && !p.accounts.length)
      v.issue(
        ['accounts'],
        'fence: account-lock needs accounts: the application accounts to lock on the new primary',
      );
  },
  preflight: (ctx, p) => reversePreflight(ctx, p),
  databases: (p) => [p.source, p.replica, p.replicationAccount],
  describe(p, snap) {
    const how =
      modeOf(p) === 'position'
        ? `by binlog file/position from ${p.startFile ?? '?'}:${p.startPos ?? '?'} (past the tool's own service writes)`
        : 'with GTID positioning';
    const lines = [
      `would configure ${p.replica} to replicate from ${p.source}${p.sourceHost ? ` (${p.sourceHost}${p.sourcePort ? `:${p.sourcePort}` : ''})` : ''} ${how}, as ${p.replicationAccount}'s user`,
      `would start replication on ${p.replica} and wait up to ${formatMs(ms(p.timeout))} for it to run`,
    ];
    if (snap?.previous)
      lines.push(
        `  ${p.replica} already has replication configured (${snap.previous.sourceHost}:${snap.previous.sourcePort}): it would be replaced`,
      );
    const fence = fenceOf(p);
    lines.push(
      `  undo: fence ${p.source} (${fence === 'account-lock' ? `ACCOUNT LOCK ${p.accounts.join(', ')} and end their sessions` : fence}), prove it takes no application write for ${formatMs(ms(p.quiet))}, wait until ${p.replica} has all of it, then stop and reset replication on ${p.replica} (${p.replica} stays frozen)`,
    );
    return lines;
  },
  async snapshot(ctx, p) {
    const r = await db(ctx, p.replica);
    const st = await r.replicaStatus();
    const v = await r.variables([r.sql.gtidVariable]);
    const accounts =
      fenceOf(p) === 'account-lock' ? await resolveAccounts(r, p.accounts).catch(() => undefined) : undefined;
    return {
      previous: st
        ? { sourceHost: st.sourceHost, sourcePort: st.sourcePort, running: st.ioRunning || st.sqlRunning }
        : null,
      replicaPosition: v[r.sql.gtidVariable] ?? '',
      ...(accounts ? { replicaAccounts: accounts } : {}),
    };
  },
  async apply(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const t = target(ctx, p);
    const st = await r.replicaStatus();
    const base = { sourceHost: t.host, sourcePort: t.port, user: t.user };
    if (st && (st.ioRunning || st.sqlRunning)) {
      if (st.sourceServerId === s.server.serverId)
        return { ...base, alreadyRunning: true, startedAt: '', skipped: [] };
      throw new StepError(
        'REPLICA_BUSY',
        `${r.label} already replicates from ${st.sourceHost}:${st.sourcePort} (server_id ${st.sourceServerId}) — stop and reset that first`,
      );
    }
    await r.requirePrivilege('replication-admin', `configuring replication on ${p.replica}`);
    // Everything the replica has must already be on the source, or the two have diverged. With the
    // frozen coordinates, only application writes count (M1: rdsadmin heartbeats and rotation do not).
    if (p.frozenFile && p.frozenPos !== null && p.frozenPos !== undefined) {
      const seen = await writesBetween(r, { file: p.frozenFile, pos: p.frozenPos });
      const app = nonService(seen);
      if (app.length)
        throw new StepError(
          'DIVERGED',
          `${r.label} took ${writesText(app)} after it was frozen (${p.frozenFile}:${p.frozenPos}) that ${p.source} does not have — replicating back would conflict with them (${describeWrites(seen)})`,
          { writes: app },
        );
    } else {
      const mine = (await r.variables([r.sql.gtidVariable]))[r.sql.gtidVariable] ?? '';
      const theirs = await everything(s);
      if (mine && !gtidIncludes(r.flavor.vendor, theirs, mine))
        throw new StepError(
          'DIVERGED',
          `${r.label} has transactions ${s.label} does not (${p.replica} at ${mine}; ${p.source} has ${theirs || 'none'}) — they may be service writes: give frozenFile/frozenPos (mysql.replication.stop's sourceFile/sourcePos) to tell application writes apart`,
        );
    }
    let change: Sql;
    let startedAt: string;
    let skipped: BinlogTxn[] = [];
    const mode = await resolveMode(s, p);
    if (mode === 'position') {
      if (!p.startFile || p.startPos === null || p.startPos === undefined)
        throw new StepError(
          'REVERSE_NO_START',
          `mode: position without startFile/startPos: the new primary's coordinates at the switch are unknown — GTIDs are off, so there is no safe place to start`,
        );
      const start = await startAfterServiceWrites(s, { file: p.startFile, pos: p.startPos });
      skipped = start.skipped;
      change = changeSourceAt(r, { ...t, ssl: p.ssl }, start.at);
      startedAt = `${start.at.file}:${start.at.pos}`;
    } else {
      let gtidStart: string | undefined;
      if (r.flavor.vendor === 'mariadb') {
        if (p.startGtid && p.startFile && p.startPos !== null && p.startPos !== undefined) {
          const start = await startAfterServiceWrites(s, { file: p.startFile, pos: p.startPos });
          skipped = start.skipped;
          gtidStart = gtidAfter(p.startGtid, skipped);
        } else gtidStart = await gtidStartFromSource(s, r);
      } else if (p.startFile && p.startPos !== null && p.startPos !== undefined) {
        const start = await startAfterServiceWrites(s, { file: p.startFile, pos: p.startPos });
        if (start.skipped.some((x) => x.objects.some((o) => o.startsWith('mysql:'))))
          ctx.warn(
            `${s.label}: account statements after the switch (${start.skipped.map((x) => x.gtid).join(', ')}) will replicate to ${p.replica} with GTID auto-position — check its accounts stay locked`,
          );
      }
      startedAt = gtidStart ?? 'auto-position';
      if (gtidStart !== undefined && p.startGtid && !r.sql.procedures && r.flavor.vendor === 'mariadb') {
        // Self-managed MariaDB: start exactly there (slave_pos), not from the replica's own binlog.
        await r.exec('SET GLOBAL gtid_slave_pos = ?', [gtidStart], {
          action: 'SET GLOBAL',
          target: `gtid_slave_pos on ${p.replica}`,
          after: gtidStart,
          detail: `reverse replication starts after ${p.source}'s switch position`,
        });
        change = r.sql.changeSource({ ...t, ssl: p.ssl });
        change = {
          ...change,
          sql: change.sql.replace('MASTER_USE_GTID=current_pos', 'MASTER_USE_GTID=slave_pos'),
          shown: change.shown.replace('MASTER_USE_GTID=current_pos', 'MASTER_USE_GTID=slave_pos'),
        };
      } else
        change = r.sql.changeSource({ ...t, ssl: p.ssl, ...(gtidStart !== undefined ? { gtidStart } : {}) });
    }
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
    if (skipped.length)
      ctx.log(
        `${p.replica} replicates from ${startedAt}: skipped ${p.source}'s own service writes at the switch (${describeWrites({ from: skipped[0]!.start, to: skipped.at(-1)!.end, transactions: skipped, rotations: 0, truncated: false })})`,
      );
    return {
      ...base,
      alreadyRunning: false,
      startedAt,
      skipped: skipped.map((x) => x.gtid ?? `${x.start.file}:${x.start.pos}`),
    };
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
  // One look, not verify's wait: a resume or a rollback's bridge decides at once whether to re-apply.
  async isApplied(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    return healthy(await r.replicaStatus(), s);
  },
  /**
   * C6: the safety net goes last. Fence the new primary (its pooled sessions included), prove it
   * quiet, wait until old has every write it took, and only then remove the reverse replication.
   * Old stays frozen: mysql.replication.stop's undo reopens it once DNS points back.
   */
  async undo(ctx, p, snap) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const st = await r.replicaStatus();
    if (!st) return;
    await s.reprobe();
    const lockMs = Math.max(2000, ms(p.quiet) * 2);
    const replicating = st.sourceServerId === s.server.serverId;
    // Until old has everything, any failure keeps the safety net and stops the rollback here
    // (UNDO_UNSAFE_*: the engine undoes nothing earlier, so DNS is not pointed back at old).
    if (replicating) {
      try {
        // 1. Fence new.
        const fence = fenceOf(p);
        const users = [
          ...new Set(p.accounts.map((a) => (a.lastIndexOf('@') > 0 ? a.slice(0, a.lastIndexOf('@')) : a))),
        ];
        if (fence === 'account-lock') {
          const accounts = await resolveAccounts(s, p.accounts);
          await setLocked(s, accounts, true, 'rollback: no application logins on the new primary');
        } else if (fence === 'read-only') {
          const now = await s.readOnly();
          await applyReadOnly(
            s,
            now,
            { readOnly: true, superReadOnly: now.superReadOnly === null ? null : true },
            lockMs,
            'rollback: fence the new primary',
          );
        }
        const ended = users.length
          ? await endSessionsOf(ctx, s, users, lockMs, 'rollback: fence the new primary')
          : '';
        if (ended) ctx.log(`${s.label}: ended ${ended}`);
        // 2. Prove it quiet: no application write for the quiet interval.
        const c0 = await currentCoord(s);
        await ctx.sleep(ms(p.quiet));
        const seen = await writesBetween(s, c0);
        const app = nonService(seen);
        if (app.length)
          throw new StepError(
            'UNDO_UNSAFE_NEW_NOT_FENCED',
            `${s.label} still took ${writesText(app)} after the fence — something outside ${p.accounts.join(', ') || 'the fence'} writes there; reverse replication left running, nothing removed`,
            { writes: app },
          );
        // 3. Wait until old has everything new has. MariaDB's MASTER_GTID_WAIT watches gtid_slave_pos,
        //    which never holds old's own GTIDs: wait on new's coordinates there (GTID mode or not).
        const gtid = (await resolveMode(s, p)) === 'gtid' && r.flavor.vendor === 'mysql';
        const target = gtid ? ((await s.variables([s.sql.gtidVariable]))[s.sql.gtidVariable] ?? '') : '';
        const end = seen.to;
        const secs = Math.ceil(ms(p.timeout) / 1000);
        const wait = gtid ? r.sql.gtidWait(target, secs) : r.sql.posWait(end.file, end.pos, secs);
        const [w] = await r.query(wait.sql, wait.params, {
          timeoutMs: ms(p.timeout) + 5000,
          signal: ctx.signal,
          op: 'position-wait',
        });
        if (!(gtid ? gtidWaitReached(w?.r) : posWaitReached(w?.r))) {
          const now = await r.replicaStatus().catch(() => undefined);
          throw new StepError(
            'UNDO_UNSAFE_REVERSE_BEHIND',
            `${r.label} did not receive everything ${p.source} took (${gtid ? target : `${end.file}:${end.pos}`}) within ${formatMs(ms(p.timeout))}${now ? ` (IO ${now.ioState}, SQL ${now.sqlRunning ? 'Yes' : 'No'}${now.lastIoError ? `, ${now.lastIoError}` : ''}${now.lastSqlError ? `, ${now.lastSqlError}` : ''})` : ''} — reverse replication left running and ${p.source} fenced; nothing removed`,
          );
        }
        ctx.log(
          `${r.label} has everything ${s.label} took (${gtid ? target : `${end.file}:${end.pos}`}); ${p.source} fenced`,
        );
      } catch (e) {
        const code = (e as StepError).code ?? 'ERROR';
        if (code.startsWith('UNDO_UNSAFE')) throw e;
        throw new StepError(
          `UNDO_UNSAFE_${code}`,
          `${(e as Error).message} — reverse replication left running; ${p.source} may not be fenced`,
          undefined,
          e,
        );
      }
    }
    // 4. Only now remove the reverse replication.
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
    // The fence's ACCOUNT LOCK replicated to old: its accounts go back to how this step found them
    // (old stays frozen by its own freeze until mysql.replication.stop's undo).
    const unlockOld = (snap.replicaAccounts ?? []).filter((x) => !x.locked);
    if (unlockOld.length) await setLocked(r, unlockOld, false, `undo: ${p.replica}'s accounts as they were`);
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
