// The cutover's heart. Writes are blocked from the moment the source turns read-only until the
// replica turns writable, so that stretch is kept to round trips on connections opened before it:
// checks, privileges, blockers and statement text are all prepared first, and journal material is
// read after. Inside: freeze source → read its position → replica waits for exactly that position →
// stop replication → replica writable.
import { z } from 'zod';
import type { MysqlAdapter, Position } from '../../adapters/mysql.js';
import {
  gtidIncludes,
  gtidWaitReached,
  hasTransactions,
  ownWritesSince,
  posWaitReached,
} from '../../adapters/mysql-flavor.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { formatMs, StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import {
  type AccountState,
  Accounts,
  accountText,
  endSessionsOf,
  resolveAccounts,
  setLocked,
} from './accounts.js';
import {
  type Coord,
  currentCoord,
  describeWrites,
  lackingOn,
  nonService,
  writesBetween,
  writesText,
} from './binlog.js';
import {
  applyReadOnly,
  blockerText,
  DbName,
  db,
  findBlockers,
  killSession,
  ms,
  notReplicaError,
  type ReadOnlyState,
  readOnlyChange,
  readOnlyStatements,
  readOnlyText,
} from './common.js';

const Params = z.lazy(() =>
  z
    .object({
      source: DbName.describe('the current primary, frozen by this step (e.g. old)'),
      replica: DbName.describe('its replica, which becomes the primary (e.g. new)'),
      timeout: Duration.default('30s').describe(
        'deadline for the replica to execute the source’s final position',
      ),
      freeze: z
        .enum(['read-only', 'account-lock', 'none'])
        .default('read-only')
        .describe(
          'read-only: SET GLOBAL read_only on the source (self-managed); account-lock: ALTER USER ... ACCOUNT LOCK of `accounts` on the source and end their sessions (RDS/Aurora: the master user has CREATE USER); none: writes are already fenced, the source is only checked to take no application write',
        ),
      accounts: Accounts,
      lockWaitTimeout: Duration.default('2s').describe(
        'how long the freeze may wait for locks before the step fails',
      ),
      killBlockers: z
        .boolean()
        .default(false)
        .describe('end sessions that would block the freeze (LOCK TABLES, long writes) before it'),
      makeWritable: z
        .boolean()
        .default(true)
        .describe('set read_only = OFF on the replica once replication is stopped'),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

interface Side extends ReadOnlyState {
  serverId: number;
  uuid: string | null;
  flavor: string;
  vendor: 'mysql' | 'mariadb';
}

interface Snap {
  source: Side & { position: Position; accounts?: AccountState[] };
  replica: Side & {
    accounts?: AccountState[];
    ioRunning: boolean;
    sqlRunning: boolean;
    gtidMode: string;
    /** MariaDB gtid_slave_pos: where a restarted replica resumes. */
    slavePos: string | null;
    /** What the replica had written itself (gtid_binlog_state / gtid_executed): the undo baseline. */
    ownState: string;
    /** Its binlog then: where an undo reads what it wrote when apply died before the switch (M10). */
    position?: Position;
  };
}

/**
 * Where the replica's writes as a primary can begin: its switch coordinates once apply got that far,
 * else its binlog position at the snapshot (apply failed or died before the switch). Reading the
 * binlog from there tells service writes (RDS heartbeat) from the application's, as GTIDs cannot.
 */
function divergenceStart(snap: Snap | undefined, out: Partial<Out> | undefined): Coord | undefined {
  if (out?.switchFile && out.switchPos !== null && out.switchPos !== undefined)
    return { file: out.switchFile, pos: out.switchPos };
  const at = snap?.replica.position;
  if (at?.file && at.pos !== null && at.pos !== undefined) return { file: at.file, pos: at.pos };
  return undefined;
}

interface Out extends Record<string, unknown> {
  /** The source's position read after the freeze (C4: guarded against, not the post-stop one). */
  sourceGtid: string;
  sourceFile: string | null;
  sourcePos: number | null;
  /** The source's coordinates once replication was stopped (information). */
  sourceStoppedFile: string | null;
  sourceStoppedPos: number | null;
  replicaGtid: string;
  /** The replica's own binlog the moment it became the primary: where its writes begin (C5). */
  switchFile: string | null;
  switchPos: number | null;
  switchGtid: string;
  /** How the replica replicated: 'gtid' or 'position' (file/position). */
  replicationMode: 'gtid' | 'position';
  /** Accounts this step locked on the source (freeze: account-lock). */
  lockedAccounts: string[];
  /** Writes blocked: freeze issued → replica writable, as seen from the tool. */
  frozenMs: number;
  waitMs: number;
  stoppedAt: string;
}

const ownStateVar = (a: MysqlAdapter) =>
  a.flavor.vendor === 'mariadb' ? 'gtid_binlog_state' : 'gtid_executed';
const appliedVar = (a: MysqlAdapter) => (a.flavor.vendor === 'mariadb' ? 'gtid_slave_pos' : 'gtid_executed');
const ownId = (a: MysqlAdapter) =>
  a.flavor.vendor === 'mariadb' ? a.server.serverId : (a.server.uuid ?? '');

function superTarget(s: ReadOnlyState, on: boolean): ReadOnlyState {
  return { readOnly: on, superReadOnly: s.superReadOnly === null ? null : on };
}

async function side(a: MysqlAdapter): Promise<Side> {
  return {
    ...(await a.readOnly()),
    serverId: a.server.serverId,
    uuid: a.server.uuid,
    flavor: a.flavor.label,
    vendor: a.flavor.vendor,
  };
}

/** What the source has that would have to be on the replica: its binlog/applied positions. */
async function everything(a: MysqlAdapter): Promise<string> {
  if (a.flavor.vendor === 'mysql') return (await a.variables(['gtid_executed'])).gtid_executed ?? '';
  const v = await a.variables(['gtid_binlog_state', 'gtid_slave_pos']);
  return [v.gtid_binlog_state, v.gtid_slave_pos].filter(Boolean).join(',');
}

/** MySQL: Executed_Gtid_Set of the same row; MariaDB: BINLOG_GTID_POS(file, pos). */
async function switchGtidAt(
  r: MysqlAdapter,
  row: Record<string, unknown> | undefined,
  file: string | null,
  pos: number | null,
): Promise<string> {
  if (r.flavor.vendor === 'mysql') return String(row?.Executed_Gtid_Set ?? '').replace(/\s+/g, '');
  if (file === null || pos === null) return '';
  const [g] = await r
    .query('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos], { op: 'switch-gtid' })
    .catch(() => [] as Record<string, unknown>[]);
  return String(g?.g ?? '').replace(/\s+/g, '');
}

async function stopped(ctx: StepContext, p: P): Promise<boolean> {
  const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
  const st = await r.replicaStatus();
  if (!st || st.ioRunning || st.sqlRunning) return false;
  if (p.freeze === 'read-only' && !(await s.readOnly()).readOnly) return false;
  if (p.makeWritable && (await r.readOnly()).readOnly) return false;
  return true;
}

/** The kind's own static checks (also run by the mysql preflight wrapper). */
export async function stopPreflight(ctx: StepContext, p: P): Promise<void> {
  const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
  if (p.freeze === 'read-only' && !s.sql.canSetReadOnly)
    throw new StepError(
      'READ_ONLY_UNSUPPORTED',
      `${s.label} is ${s.flavor.label}: SQL cannot set read_only there — use freeze: account-lock with the application accounts`,
    );
  if (p.freeze === 'account-lock') await resolveAccounts(s, p.accounts);
  // The writes-after-freeze guard and the undo read both binlogs.
  await currentCoord(s);
  await currentCoord(r);
  await s.binaryLogs();
  await r.binaryLogs();
}

export const replicationStop = defineKind<P, Snap, Out>({
  kind: 'mysql.replication.stop',
  summary:
    'freeze the source, wait until the replica has its exact final position, stop replication, make the replica writable',
  params: Params,
  outputs: [
    'sourceGtid',
    'sourceFile',
    'sourcePos',
    'sourceStoppedFile',
    'sourceStoppedPos',
    'replicaGtid',
    'switchFile',
    'switchPos',
    'switchGtid',
    'replicationMode',
    'lockedAccounts',
    'frozenMs',
    'waitMs',
    'stoppedAt',
  ],
  undoUnsafeAfterNewWrites: true,
  preflightReads: ['source', 'replica', 'freeze', 'accounts', 'makeWritable'],
  validate(p, v) {
    if (p.source === p.replica) v.issue(['replica'], 'source and replica are the same database');
    if (p.freeze === 'account-lock' && !p.accounts.length)
      v.issue(['accounts'], 'freeze: account-lock needs accounts: the application accounts to lock');
    if (p.freeze !== 'account-lock' && p.accounts.length)
      v.issue(['accounts'], 'accounts: is only used with freeze: account-lock', 'warning');
  },
  preflight: (ctx, p) => stopPreflight(ctx, p),
  databases: (p) => [p.source, p.replica],
  describe(p, snap) {
    const lines: string[] = [];
    if (p.freeze === 'account-lock')
      lines.push(
        `would ALTER USER ${p.accounts.join(', ')} ACCOUNT LOCK on ${p.source} and end their open sessions`,
      );
    if (p.freeze === 'read-only')
      lines.push(
        `would SET GLOBAL ${snap?.source.superReadOnly !== null && snap ? 'super_read_only' : 'read_only'} = ON on ${p.source}${snap ? ` (was ${readOnlyText(snap.source)})` : ''}`,
      );
    lines.push(
      `would wait up to ${formatMs(ms(p.timeout))} for ${p.replica} to execute ${p.source}'s position read after the freeze`,
    );
    lines.push(
      `would stop replication on ${p.replica}${snap ? ` (IO ${snap.replica.ioRunning ? 'running' : 'stopped'}, SQL ${snap.replica.sqlRunning ? 'running' : 'stopped'})` : ''}`,
    );
    if (p.freeze === 'account-lock')
      lines.push(`would ALTER USER ... ACCOUNT UNLOCK on ${p.replica} (the lock replicated there)`);
    if (p.makeWritable)
      lines.push(
        `would SET GLOBAL read_only = OFF on ${p.replica}${snap ? ` (was ${readOnlyText(snap.replica)})` : ''}`,
      );
    lines.push(
      `  undo: ${p.replica} fenced again, replication restarted from the recorded position, ${p.source} as it was — refused once ${p.replica} has taken application writes ${p.source} lacks`,
    );
    return lines;
  },

  async snapshot(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const [src, rep, pos, repPos, st, rv] = await Promise.all([
      side(s),
      side(r),
      s.position(),
      r.position().catch(() => undefined),
      r.replicaStatus(),
      r.variables([ownStateVar(r), ...(r.flavor.vendor === 'mariadb' ? ['gtid_slave_pos'] : [])]),
    ]);
    const locks = p.freeze === 'account-lock';
    const [srcAcc, repAcc] = locks
      ? await Promise.all([resolveAccounts(s, p.accounts), resolveAccounts(r, p.accounts).catch(() => [])])
      : [undefined, undefined];
    return {
      source: { ...src, position: pos, ...(srcAcc ? { accounts: srcAcc } : {}) },
      replica: {
        ...rep,
        ...(repAcc ? { accounts: repAcc } : {}),
        ioRunning: !!st?.ioRunning,
        sqlRunning: !!st?.sqlRunning,
        gtidMode: st?.gtidMode ?? 'none',
        slavePos: rv.gtid_slave_pos ?? null,
        ownState: rv[ownStateVar(r)] ?? '',
        ...(repPos ? { position: repPos } : {}),
      },
    };
  },

  async apply(ctx, p, snap) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);

    // ---- before the freeze: every check and every slow read
    const st = await r.replicaStatus();
    if (!st) throw notReplicaError(r);
    if (st.sourceServerId !== null && st.sourceServerId !== s.server.serverId)
      throw new StepError(
        'REPLICA_OF_ANOTHER_SOURCE',
        `${r.label} replicates from server_id ${st.sourceServerId} (${st.sourceHost}:${st.sourcePort}), not from ${s.label} (server_id ${s.server.serverId})`,
      );
    if (!st.sqlRunning || st.ioState !== 'Yes')
      throw new StepError(
        'REPLICATION_NOT_RUNNING',
        `${r.label}: replication is not running (IO ${st.ioState}, SQL ${st.sqlRunning ? 'Yes' : 'No'}${st.lastIoError ? `; ${st.lastIoError}` : ''}${st.lastSqlError ? `; ${st.lastSqlError}` : ''}) — the replica cannot catch up; fix it before the cutover`,
      );
    // A GTID replica waits on GTIDs even when the source has none yet (the wait then returns at once).
    const useGtid = st.gtidMode !== 'off';
    if (!useGtid && !snap.source.position.file)
      throw new StepError(
        'NO_SOURCE_POSITION',
        `${s.label}: neither GTIDs nor a binlog position are readable — grant BINLOG MONITOR (REPLICATION CLIENT) to ${s.user}`,
      );
    const freeze = p.freeze === 'read-only';
    const lockAccounts = p.freeze === 'account-lock';
    if (freeze && !s.sql.canSetReadOnly)
      throw new StepError(
        'READ_ONLY_UNSUPPORTED',
        `${s.label} is ${s.flavor.label}: SQL cannot set read_only there — use freeze: account-lock with the application accounts`,
      );
    if (freeze) await s.requirePrivilege('set-read-only', `freezing ${p.source}`);
    if (r.sql.procedures)
      await r.requirePrivilege('replication-admin', `stopping replication on ${p.replica}`);
    else await r.requirePrivilege('replication-admin', `${r.sql.stopReplica} on ${p.replica}`);
    const repRo = await r.readOnly();
    const unfreeze = p.makeWritable ? readOnlyStatements(repRo, superTarget(repRo, false)) : [];
    if (unfreeze.length && !r.sql.canSetReadOnly)
      throw new StepError(
        'READ_ONLY_UNSUPPORTED',
        `${r.label} is ${r.flavor.label} with read_only=ON, which SQL cannot change — set read_only=0 in its parameter group before the cutover`,
      );
    if (unfreeze.length) await r.requirePrivilege('set-read-only', `making ${p.replica} writable`);
    const srcRo = freeze ? await s.readOnly() : snap.source;
    const freezeStmts = freeze ? readOnlyStatements(srcRo, superTarget(srcRo, true)) : [];
    // account-lock: the accounts unlocked now are locked in the window; the replica's copies that
    // were unlocked before are unlocked again once it stops (the lock replicates to it).
    const toLock = lockAccounts ? (snap.source.accounts ?? []).filter((x) => !x.locked) : [];
    const toUnlockOnReplica = lockAccounts
      ? (snap.replica.accounts ?? []).filter((x) => !x.locked).map(({ user, host }) => ({ user, host }))
      : [];
    const lockUsers = [...new Set((snap.source.accounts ?? []).map((x) => x.user))];
    if (lockAccounts) await s.requirePrivilege('kill-others', `ending sessions of ${lockUsers.join(', ')}`);
    if (freezeStmts.length) {
      const blockers = await findBlockers(s);
      if (blockers.length && p.killBlockers) {
        await s.requirePrivilege('kill-others', 'ending the sessions that block the freeze');
        for (const b of blockers) await killSession(s, b);
      } else if (blockers.length)
        ctx.warn(`${s.label}: sessions that may delay the freeze: ${blockers.map(blockerText).join(', ')}`);
      await s.session('SET SESSION lock_wait_timeout = ?', [
        Math.max(1, Math.ceil(ms(p.lockWaitTimeout) / 1000)),
      ]);
    }
    const timeoutSec = Math.max(1, Math.ceil(ms(p.timeout) / 1000));
    const freezeChanges = freezeStmts.map((x) => ({
      sql: x.sql,
      change: readOnlyChange(x, p.source, srcRo, 'freeze the source'),
    }));
    const stopChange = {
      action: 'run',
      target: `${r.sql.stopReplica} on ${p.replica}`,
      detail: `after it has executed ${p.source}'s final position`,
    };
    const unfreezeChanges = unfreeze.map((x) => ({
      sql: x.sql,
      change: readOnlyChange(x, p.replica, repRo, 'the replica takes the writes'),
    }));
    const waitOpts = { timeoutMs: ms(p.timeout) + 5000, signal: ctx.signal, op: 'position-wait' };

    // ---- frozen: round trips only
    const t0 = performance.now();
    let endedSessions = '';
    try {
      for (const f of freezeChanges) await s.exec(f.sql, [], f.change, { op: 'freeze' });
      if (toLock.length) {
        await setLocked(s, toLock, true, 'freeze the source: no new logins of the application', true);
        // A lock refuses new logins only: sessions still open could write after the position read.
        endedSessions = await endSessionsOf(
          ctx,
          s,
          lockUsers,
          ms(p.lockWaitTimeout),
          'freeze: account locked',
        );
      }
    } catch (e) {
      if ((e as StepError).code === 'DB_LOCK_WAIT_TIMEOUT') {
        const blockers = await findBlockers(s).catch(() => []);
        throw new StepError(
          'READ_ONLY_BLOCKED',
          `${s.label}: the freeze waited ${formatMs(ms(p.lockWaitTimeout))} for locks${blockers.length ? ` held by ${blockers.map(blockerText).join(', ')}` : ''} — end them (killBlockers: true) and retry; nothing was stopped`,
        );
      }
      throw e;
    }
    const tFrozen = performance.now();
    // Coordinates first, then the GTID position: a write between the two is after the coordinates,
    // so the writes-after-freeze guard sees it.
    const [binlogRow] = await s.query(s.sql.binlogStatus, [], { op: 'position' }).catch((e) => {
      if (!useGtid) throw e;
      return [] as Record<string, unknown>[];
    });
    const frozenFile = binlogRow?.File === undefined ? null : String(binlogRow.File);
    const frozenPos = binlogRow?.Position === undefined ? null : Number(binlogRow.Position);
    let frozenGtid = '';
    if (useGtid) {
      const [g] = await s.query(`SELECT @@GLOBAL.${s.sql.gtidVariable} AS g`, [], { op: 'position-gtid' });
      frozenGtid = String(g?.g ?? '').replace(/\s+/g, '');
    }
    const position: Position = { gtid: frozenGtid, file: frozenFile, pos: frozenPos };
    const wait = useGtid
      ? r.sql.gtidWait(position.gtid, timeoutSec)
      : r.sql.posWait(position.file ?? '', position.pos ?? 0, timeoutSec);
    const tw = performance.now();
    const [w] = await r.query(wait.sql, wait.params, waitOpts);
    const waitMs = performance.now() - tw;
    if (!(useGtid ? gtidWaitReached(w?.r) : posWaitReached(w?.r))) {
      const now = await r.replicaStatus().catch(() => undefined);
      throw new StepError(
        'REPLICA_NOT_CAUGHT_UP',
        `${r.label} did not reach ${p.source}'s position ${useGtid ? position.gtid : `${position.file}:${position.pos}`} within ${formatMs(ms(p.timeout))}${now ? ` (IO ${now.ioState}, SQL ${now.sqlRunning ? 'Yes' : 'No'}, Seconds_Behind ${now.secondsBehind ?? 'NULL'}${now.lastSqlError ? `, ${now.lastSqlError}` : ''})` : ''} — replication was left running; the source is unfrozen by the rollback`,
        { position },
      );
    }
    const tCaught = performance.now();
    await stopHooks.beforeStop?.();
    await r.exec(r.sql.stopReplica, [], stopChange, { op: 'stop-replica' });
    const tStopped = performance.now();
    // C5: where the replica's own writes begin, read before anything can write there.
    // One round trip: the GTID position at these coordinates is derived after the window.
    const [switchRow] = await r.query(r.sql.binlogStatus, [], { op: 'switch-position' }).catch(() => []);
    if (toUnlockOnReplica.length)
      await setLocked(
        r,
        toUnlockOnReplica,
        false,
        'the lock replicated here: the new primary takes the logins',
        true,
      );
    for (const u of unfreezeChanges) await r.exec(u.sql, [], u.change, { op: 'unfreeze' });
    const t1 = performance.now();
    const frozenMs = t1 - t0;
    const phases = `freeze ${(tFrozen - t0).toFixed(1)}, position+wait ${(tCaught - tFrozen).toFixed(1)}, stop ${(tStopped - tCaught).toFixed(1)}, unfreeze ${(t1 - tStopped).toFixed(1)} ms`;

    // ---- after: journal material
    if (freezeStmts.length) await s.session('SET SESSION lock_wait_timeout = DEFAULT').catch(() => {});
    const [srcPos, rv] = await Promise.all([s.position(), r.variables([appliedVar(r)])]);
    const switchFile = switchRow?.File === undefined ? null : String(switchRow.File);
    const switchPos = switchRow?.Position === undefined ? null : Number(switchRow.Position);
    const switchGtid = await switchGtidAt(r, switchRow, switchFile, switchPos);
    ctx.log(
      `writes blocked ${frozenMs.toFixed(1)} ms (${phases}); frozen position ${[position.gtid, position.file && `${position.file}:${position.pos}`].filter(Boolean).join(', ')}${toLock.length ? `; locked ${toLock.map(accountText).join(', ')}` : ''}${endedSessions ? `; ended ${endedSessions}` : ''}`,
    );
    return {
      sourceGtid: position.gtid,
      sourceFile: position.file,
      sourcePos: position.pos,
      sourceStoppedFile: srcPos.file,
      sourceStoppedPos: srcPos.pos,
      replicaGtid: rv[appliedVar(r)] ?? '',
      switchFile,
      switchPos,
      switchGtid,
      replicationMode: useGtid ? 'gtid' : 'position',
      lockedAccounts: toLock.map(accountText),
      frozenMs: Math.round(frozenMs * 1000) / 1000,
      waitMs: Math.round(waitMs * 1000) / 1000,
      stoppedAt: new Date().toISOString(),
    };
  },

  async verify(ctx, p, snap, out) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const [pos, st, ro] = await Promise.all([s.position(), r.replicaStatus(), r.readOnly()]);
    // C4 + M1: against the frozen coordinates, and only application writes count.
    if (out.sourceFile && out.sourcePos !== null && pos.file !== null) {
      const seen = await writesBetween(s, { file: out.sourceFile, pos: out.sourcePos });
      const app = nonService(seen);
      if (app.length)
        throw new StepError(
          'WRITES_AFTER_FREEZE',
          `${s.label} took writes after the freeze (${out.sourceFile}:${out.sourcePos} → ${seen.to.file}:${seen.to.pos}: ${describeWrites(seen)}) — an account outside the fence or an event wrote; ${p.replica} may not have them`,
          { writes: app },
        );
      if (seen.transactions.length || seen.rotations)
        ctx.log(`${s.label}: no application write after the freeze (${describeWrites(seen)})`);
    } else if (
      out.sourceGtid &&
      pos.gtid !== out.sourceGtid &&
      !gtidIncludes(s.flavor.vendor, out.sourceGtid, pos.gtid)
    )
      throw new StepError(
        'WRITES_AFTER_FREEZE',
        `${s.label} took writes after the freeze (position ${out.sourceGtid} → ${pos.gtid}) — an account with READ ONLY ADMIN/SUPER or an event wrote; those writes are not on ${p.replica} (grant BINLOG MONITOR to tell service writes apart)`,
      );
    if (out.lockedAccounts?.length) {
      const open = (await s.accountLocks(snap.source.accounts ?? [])).filter((x) => !x.locked);
      if (open.length)
        throw new StepError(
          'FREEZE_LIFTED',
          `${s.label}: ${open.map((x) => accountText(x.account)).join(', ')} unlocked again after the freeze — someone else changes these accounts`,
        );
    }
    if (st && (st.ioRunning || st.sqlRunning))
      throw new StepError(
        'REPLICATION_STILL_RUNNING',
        `${r.label}: replication is still running after the stop`,
      );
    if (p.makeWritable && ro.readOnly)
      throw new StepError('REPLICA_STILL_READ_ONLY', `${r.label} is still read-only (${readOnlyText(ro)})`);
  },

  isApplied: (ctx, p) => stopped(ctx, p),

  async undoBlocker(ctx, p, snap, out) {
    const from = divergenceStart(snap, out);
    if (!from) return undefined;
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const seen = await writesBetween(r, from, undefined, {
      maxEvents: 1_000_000,
    });
    const missing = await lackingOn(s, r, nonService(seen));
    if (missing.length)
      return `${r.label} has taken ${seen.truncated ? 'at least ' : ''}${writesText(missing)} since it became the primary that ${p.source} does not have, and nothing replicates them back`;
    if (seen.truncated)
      return `${r.label} has written more than 1,000,000 binlog events since it became the primary`;
    return undefined;
  },

  async undo(ctx, p, snap, out) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const lockMs = ms(p.lockWaitTimeout);
    // m4: a reconnect may have reached another server (Aurora failover): compare identities first.
    await Promise.all([s.reprobe(), r.reprobe()]);
    if (
      r.server.serverId !== snap.replica.serverId ||
      (snap.replica.uuid && r.server.uuid !== snap.replica.uuid)
    )
      throw new StepError(
        'UNDO_SERVER_CHANGED',
        `${r.label} is now server_id ${r.server.serverId}${r.server.uuid ? ` (${r.server.uuid})` : ''}, not the server_id ${snap.replica.serverId} this step stopped (a failover?) — its recorded positions do not apply; undo refused, nothing changed`,
      );
    // 1. Fence the replica again first, so nothing lands on it while we decide.
    const repNow = await r.readOnly();
    const repWas = { readOnly: snap.replica.readOnly, superReadOnly: snap.replica.superReadOnly };
    const refroze = readOnlyStatements(repNow, repWas).length > 0;
    if (refroze) await applyReadOnly(r, repNow, repWas, lockMs, `undo: ${p.replica} read-only again`);
    const appAccounts = (snap.source.accounts ?? []).map(({ user, host }) => ({ user, host }));
    const lockedHere =
      p.freeze === 'account-lock' && appAccounts.length
        ? await setLocked(r, appAccounts, true, `undo: no application logins on ${p.replica} while deciding`)
        : [];
    if (lockedHere.length)
      await endSessionsOf(ctx, r, [...new Set(appAccounts.map((a) => a.user))], lockMs, 'undo: fence');
    const leaveAsFound = async () => {
      if (refroze)
        await applyReadOnly(
          r,
          await r.readOnly(),
          repNow,
          lockMs,
          `undo refused: ${p.replica} left as found`,
        );
      if (lockedHere.length)
        await setLocked(r, lockedHere, false, `undo refused: ${p.replica} left as found`);
    };

    // 2. Application writes the replica took as a primary are lost by restarting replication —
    //    unless the old source has them (reverse replication carried them over). Service writes
    //    (mysql.rds_*, the tool's own ACCOUNT LOCK/UNLOCK) are not the application's (M10).
    const from = divergenceStart(snap, out);
    if (from) {
      const seen = await writesBetween(r, from, undefined, {
        maxEvents: 1_000_000,
      });
      const missing = await lackingOn(s, r, nonService(seen));
      // Past the cap nothing is proven about the rest: refuse rather than guess.
      if (seen.truncated && !missing.length) {
        await leaveAsFound();
        throw new StepError(
          'UNDO_UNSAFE_NEW_WRITES',
          `${r.label} has written more than 1,000,000 binlog events since it became the primary (${describeWrites(seen)}); the tool cannot prove ${p.source} has all of them — undo refused, ${p.replica} left as it was`,
        );
      }
      if (missing.length) {
        await leaveAsFound();
        throw new StepError(
          'UNDO_UNSAFE_NEW_WRITES',
          `${r.label} has taken ${seen.truncated ? 'at least ' : ''}${writesText(missing)} since it became the primary that ${p.source} does not have${missing.length < nonService(seen).length ? ` (${nonService(seen).length - missing.length} more it has)` : ''}: restarting replication would lose them — undo refused, ${p.replica} left as it was. Keep ${p.replica} as the primary, or replicate them back first (mysql.replication.reverse)`,
          { missing: missing.length, writes: missing.slice(0, 100), seen: describeWrites(seen) },
        );
      }
      if (seen.transactions.length)
        ctx.log(`${r.label} since it became the primary: ${describeWrites(seen)}`);
    } else {
      const current = (await r.variables([ownStateVar(r)]))[ownStateVar(r)] ?? '';
      const own = ownWritesSince(r.flavor.vendor, ownId(r), snap.replica.ownState, current);
      if (own) {
        const onSource = await everything(s);
        if (!hasTransactions(r.flavor.vendor, onSource, own.position)) {
          await leaveAsFound();
          throw new StepError(
            'UNDO_UNSAFE_NEW_WRITES',
            `${r.label} has taken ${own.count} write(s) since replication stopped (up to ${own.last}) that ${p.source} does not have: restarting replication would lose them — undo refused, ${p.replica} left as it was. Keep ${p.replica} as the primary, or replicate them back first (mysql.replication.reverse)`,
            { own },
          );
        }
      }
    }
    // 3. Restart replication where it stopped.
    const st = await r.replicaStatus();
    if (!st) throw notReplicaError(r);
    const wantIo = snap.replica.ioRunning;
    const wantSql = snap.replica.sqlRunning;
    if ((wantIo && !st.ioRunning) || (wantSql && !st.sqlRunning)) {
      if (
        r.flavor.vendor === 'mariadb' &&
        st.gtidMode === 'slave_pos' &&
        out?.replicaGtid &&
        !st.ioRunning &&
        !st.sqlRunning
      ) {
        const cur = (await r.variables(['gtid_slave_pos'])).gtid_slave_pos ?? '';
        if (!gtidIncludes('mariadb', cur, out.replicaGtid))
          await r.exec('SET GLOBAL gtid_slave_pos = ?', [out.replicaGtid], {
            action: 'SET GLOBAL',
            target: `gtid_slave_pos on ${p.replica}`,
            before: cur,
            after: out.replicaGtid,
            detail: 'resume where replication stopped',
          });
      }
      const stmt =
        wantIo && wantSql
          ? r.sql.startReplica
          : r.sql.startThread
            ? r.sql.startThread(wantIo ? 'io' : 'sql')
            : r.sql.startReplica;
      await r.exec(stmt, [], {
        action: 'run',
        target: `${stmt} on ${p.replica}`,
        detail: 'undo: replication resumes from the recorded position',
      });
      const deadline = Date.now() + 15_000;
      for (;;) {
        const now = await r.replicaStatus();
        if (now && (!wantIo || now.ioRunning) && (!wantSql || now.sqlRunning)) break;
        if (now && (now.lastIoErrno || now.lastSqlErrno) && Date.now() > deadline - 12_000)
          throw new StepError(
            'REPLICATION_NOT_RESTARTED',
            `${r.label}: replication did not restart: ${now.lastIoErrno || now.lastSqlErrno} ${now.lastIoError || now.lastSqlError}`,
          );
        if (Date.now() > deadline)
          throw new StepError(
            'REPLICATION_NOT_RESTARTED',
            `${r.label}: replication did not restart within 15s (IO ${now?.ioState ?? '?'}, SQL ${now?.sqlRunning ? 'Yes' : 'No'})`,
          );
        await ctx.sleep(100);
      }
    }

    // 4. The source as it was. Its ACCOUNT UNLOCK replicates to the replica (running again), which
    //    restores the replica's copies too; any left locked are unlocked there directly.
    const srcNow = await s.readOnly();
    const srcWas = { readOnly: snap.source.readOnly, superReadOnly: snap.source.superReadOnly };
    await applyReadOnly(s, srcNow, srcWas, lockMs, `undo: ${p.source} as it was`);
    const srcUnlocked = (snap.source.accounts ?? []).filter((x) => !x.locked);
    if (srcUnlocked.length) await setLocked(s, srcUnlocked, false, `undo: ${p.source} takes logins again`);
    const repUnlocked = (snap.replica.accounts ?? []).filter((x) => !x.locked);
    if (repUnlocked.length) {
      const deadline = Date.now() + 5000;
      while (
        (await r.accountLocks(repUnlocked)).some((x) => x.locked) &&
        Date.now() < deadline &&
        r.mode === 'live'
      )
        await ctx.sleep(100);
      await setLocked(r, repUnlocked, false, `undo: ${p.replica}'s accounts as they were`);
    }
  },
});

/** Test seam: runs between the replica's wait and the stop (C4 tests inject a write there). */
export const stopHooks: { beforeStop?: () => Promise<void> } = {};
