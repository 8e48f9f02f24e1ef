// The mysql kinds' preflight: read-only checks that no earlier step's change can alter (what the
// account may run, what the platform lets SQL change, binlog and GTID settings). `plan` and `run`
// call them for every step before the first one runs (see src/preflight.ts), so the RDS/Aurora
// refusals the review found in the window (C1, C2, M6, M7, M9a) are found before it.
import type { MysqlAdapter } from '../../adapters/mysql.js';
import type { StepContext } from '../../engine/types.js';
import { errorCode, errorMessage, StepError } from '../../errors.js';
import { db, requireKill } from './common.js';
import { mysqlPrivilegeNeeds } from './index.js';

type Params = Record<string, unknown>;
type Check = (ctx: StepContext, p: Params, problems: Problems) => Promise<void>;

/** Collects every problem of one step; only errors the tool raises on purpose become problems. */
class Problems {
  readonly list: string[] = [];
  add(message: string) {
    if (!this.list.includes(message)) this.list.push(message);
  }
  async check(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      const code = errorCode(e);
      if (code === 'ABORTED' || !(e instanceof StepError)) throw e;
      this.add(errorMessage(e));
    }
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

async function procedures(a: MysqlAdapter, procs: (string | undefined)[], doing: string, problems: Problems) {
  const list = procs.filter((x): x is string => !!x);
  await problems.check(() => a.requireProcedures(list, doing));
}

async function killRight(a: MysqlAdapter, doing: string, problems: Problems) {
  await problems.check(() => requireKill(a, doing));
}

const on = (v: string | null | undefined) => v === 'ON' || v === '1';

interface BinlogSettings {
  logBin: boolean;
  format: string | null;
  gtidMode: string | null;
  enforceGtid: string | null;
}

async function binlogSettings(a: MysqlAdapter): Promise<BinlogSettings> {
  const v = await a.variables(['log_bin', 'binlog_format', 'gtid_mode', 'enforce_gtid_consistency']);
  return {
    logBin: on(v.log_bin),
    format: v.binlog_format ?? null,
    gtidMode: v.gtid_mode ?? null,
    enforceGtid: v.enforce_gtid_consistency ?? null,
  };
}

/** log_bin ON and a row-carrying format: what a source of replication (forward or reverse) needs. */
function binlogProblems(a: MysqlAdapter, b: BinlogSettings, why: string, problems: Problems) {
  const fix =
    a.flavor.platform === 'aurora'
      ? 'set binlog_format in the cluster parameter group and reboot the writer'
      : a.flavor.platform === 'rds'
        ? 'turn on automated backups (RDS writes binlogs only then) and set binlog_format in the parameter group'
        : 'start the server with log_bin';
  if (!b.logBin) problems.add(`${a.label}: log_bin is OFF, ${why} — ${fix}`);
  else if (b.format && !/^(ROW|MIXED)$/i.test(b.format))
    problems.add(
      `${a.label}: binlog_format=${b.format}, ${why} needs ROW or MIXED (statement-based events replay @@server_id and NOW() on the other side) — set binlog_format=ROW`,
    );
}

/** MySQL GTID auto-position needs gtid_mode=ON and enforce_gtid_consistency=ON on this server. */
function gtidProblems(a: MysqlAdapter, b: BinlogSettings, why: string, problems: Problems) {
  if (a.flavor.vendor !== 'mysql') return; // MariaDB always writes GTIDs
  const bad = [
    !on(b.gtidMode) ? `gtid_mode=${b.gtidMode ?? 'unknown'}` : '',
    !on(b.enforceGtid) ? `enforce_gtid_consistency=${b.enforceGtid ?? 'unknown'}` : '',
  ].filter(Boolean);
  if (bad.length)
    problems.add(
      `${a.label}: ${bad.join(', ')}, ${why} needs GTIDs — set gtid_mode=ON and enforce_gtid_consistency=ON${a.sql.procedures ? ' in the parameter group' : ''}`,
    );
}

export interface Retention {
  /** Hours binlogs are kept, null when they go as soon as they can (RDS default), undefined unknown. */
  hours: number | null | undefined;
  source: string;
}

/** Binlog retention where readable: RDS/Aurora's rds_show_configuration, else expire_logs_*. */
export async function binlogRetention(a: MysqlAdapter): Promise<Retention> {
  if (a.sql.procedures) {
    const proc = a.sql.procs.showConfiguration;
    if (!proc) return { hours: undefined, source: 'unknown' };
    try {
      const rows = await a.query(`CALL mysql.${proc}`, [], { op: 'rds-configuration' });
      const row = rows.find((r) => String(r.name ?? r.Name ?? '').toLowerCase() === 'binlog retention hours');
      if (!row) return { hours: undefined, source: `mysql.${proc}` };
      const v = row.value ?? row.Value;
      return {
        hours: v === null || v === undefined || String(v) === '' ? null : Number(v),
        source: `mysql.${proc}`,
      };
    } catch {
      return { hours: undefined, source: `mysql.${proc}` };
    }
  }
  const v = await a.variables(['binlog_expire_logs_seconds', 'expire_logs_days']);
  const secs = Number(v.binlog_expire_logs_seconds ?? 0);
  const days = Number(v.expire_logs_days ?? 0);
  // 0 everywhere: binlogs are kept until purged by hand.
  const hours = secs > 0 ? secs / 3600 : days > 0 ? days * 24 : Number.POSITIVE_INFINITY;
  return { hours, source: secs > 0 ? 'binlog_expire_logs_seconds' : 'expire_logs_days' };
}

// ---------------------------------------------------------------- per kind

const readOnlyCheck: Check = async (ctx, p, problems) => {
  const a = await db(ctx, String(p.on));
  if (!a.sql.canSetReadOnly)
    problems.add(
      `${a.label} is ${a.flavor.label}: SQL cannot set read_only there (a parameter-group setting)`,
    );
  if (p.killBlockers) await killRight(a, 'ending the sessions that block it', problems);
};

/** Replication control on RDS/Aurora: each rds_* procedure (privileges elsewhere: mysqlPrivilegeNeeds). */
async function replicationControl(
  r: MysqlAdapter,
  procs: (string | undefined)[],
  doing: string,
  problems: Problems,
) {
  if (r.sql.procedures) await procedures(r, [...procs, r.sql.procs.replicaStatus], doing, problems);
}

/**
 * The side that must take writes is read-only: can SQL change that there at all? (M9a; the
 * privilege, or Aurora 3.06's rds_set_read_only EXECUTE, is mysqlPrivilegeNeeds' set-read-only.)
 */
async function writableCheck(a: MysqlAdapter, problems: Problems) {
  const ro = await a.readOnly();
  if (!ro.readOnly && !ro.superReadOnly) return;
  if (!a.sql.canSetReadOnly)
    problems.add(
      `${a.label} is ${a.flavor.label} with read_only=ON, which SQL cannot change — set read_only=0 in its parameter group before the cutover`,
    );
}

const stopCheck: Check = async (ctx, p, problems) => {
  const [s, r] = await Promise.all([db(ctx, String(p.source)), db(ctx, String(p.replica))]);
  const freeze = str(p.freeze) ?? 'read-only';
  if (freeze === 'read-only') {
    // C2: the template's old default on RDS; account-lock needs only CREATE USER (the master has it).
    if (!s.sql.canSetReadOnly)
      problems.add(
        `${s.label} is ${s.flavor.label}: SQL cannot set read_only there, so freeze: read-only cannot freeze it — use freeze: account-lock (ALTER USER … ACCOUNT LOCK of the app accounts) or freeze: none behind a fence (security group + mysql.connections.drain)`,
      );
    if (p.killBlockers) await killRight(s, 'ending the sessions that block the freeze', problems);
  }
  await replicationControl(
    r,
    [r.sql.procs.stop, r.sql.procs.start],
    `stopping replication on ${p.replica} (and restarting it on undo)`,
    problems,
  );
  if (p.makeWritable !== false) await writableCheck(r, problems);

  let st: Awaited<ReturnType<MysqlAdapter['replicaStatus']>>;
  try {
    st = await r.replicaStatus();
  } catch (e) {
    if (e instanceof StepError) return; // already named above (no EXECUTE on rds_replica_status)
    throw e;
  }
  if (!st) {
    problems.add(
      `${r.label} has no replication configured (${r.sql.replicaStatus} is empty) — check the replica's name`,
    );
    return;
  }
  const sb = await binlogSettings(s);
  binlogProblems(s, sb, `${p.replica} replicates from it`, problems);
  if (st.gtidMode === 'auto-position') {
    gtidProblems(s, sb, `${p.replica}'s auto-position replication`, problems);
    gtidProblems(r, await binlogSettings(r), 'auto-position replication', problems);
  }
  const keep = await binlogRetention(s).catch(() => undefined);
  if (keep?.hours === null)
    ctx.warn(
      `${s.label}: binlog retention is not set (${keep.source}): binlogs go once backed up, so an undo that restarts replication later may find them gone — CALL mysql.rds_set_configuration('binlog retention hours', 24)`,
    );
};

/**
 * Does the reverse replication position by GTID? The kind says so with `mode: gtid|position` or a
 * `startFile` (file/position from the switch coordinates); else it follows the forward
 * replication's mode (GTID needed only when the new side replicates by GTID today).
 */
export function reverseUsesGtid(p: Params, forwardGtidMode: string | undefined): boolean {
  if (typeof p.startFile === 'string' && p.startFile) return false;
  for (const k of ['position', 'positioning', 'mode']) {
    const v = str(p[k]);
    if (v && /file|pos(ition)?$/i.test(v) && !/gtid|auto/i.test(v)) return false;
    if (v && /gtid|auto/i.test(v)) return true;
  }
  for (const k of ['autoPosition', 'gtid']) if (typeof p[k] === 'boolean') return p[k] as boolean;
  return forwardGtidMode !== undefined && forwardGtidMode !== 'off';
}

const reverseCheck: Check = async (ctx, p, problems) => {
  const [s, r] = await Promise.all([db(ctx, String(p.source)), db(ctx, String(p.replica))]);
  await replicationControl(
    r,
    [r.sql.procs.changeSource, r.sql.procs.start, r.sql.procs.stop, r.sql.procs.reset],
    `configuring replication on ${p.replica} from ${p.source} (and removing it on undo)`,
    problems,
  );
  const sb = await binlogSettings(s);
  binlogProblems(s, sb, `${p.replica} is to replicate from it`, problems);
  // The new side still replicates from the old one: its mode says how the reverse will position.
  const forward = await s.replicaStatus().catch(() => undefined);
  const gtid = reverseUsesGtid(p, forward?.gtidMode);
  if (gtid) {
    gtidProblems(s, sb, 'reverse replication by auto-position', problems);
    gtidProblems(r, await binlogSettings(r), 'reverse replication by auto-position', problems);
  }
  const keep = await binlogRetention(s).catch(() => undefined);
  if (keep?.hours === null || keep?.hours === 0)
    problems.add(
      `${s.label}: binlog retention is not set (${keep.source}): binlogs go once backed up, before ${p.replica} may have read them — CALL mysql.rds_set_configuration('binlog retention hours', 24) on ${p.source}`,
    );
};

const CHECKS: Record<string, Check> = {
  'mysql.read-only': readOnlyCheck,
  'mysql.replication.stop': stopCheck,
  'mysql.replication.reverse': reverseCheck,
};

// A kind's own preflight may test what ours does (the read_only refusal, log_bin, gtid_mode on the
// reverse source): its error with one of these codes is then already named by ours.
const NAMED_HERE = new Set(['READ_ONLY_UNSUPPORTED', 'REVERSE_NO_BINLOG', 'REVERSE_GTID_OFF']);

type Preflight = (ctx: StepContext, p: unknown) => Promise<void>;

/**
 * The kind's preflight: the privileges of mysqlPrivilegeNeeds (kill-others through mysql.rds_kill on
 * RDS/Aurora), this file's checks, and the kind's own preflight if it has one. Every problem of the
 * step in one PREFLIGHT_FAILED line.
 */
export function withMysqlPreflight(kind: string, own?: Preflight): Preflight {
  const check = CHECKS[kind];
  return async (ctx, raw) => {
    const p = raw as Params;
    const problems = new Problems();
    // mysqlPrivilegeNeeds lives in ./index.ts, which imports this module: called at preflight time only.
    for (const n of mysqlPrivilegeNeeds(kind, p)) {
      const a = await db(ctx, n.database);
      await problems.check(() =>
        n.need === 'kill-others' ? requireKill(a, n.doing) : a.requirePrivilege(n.need, n.doing),
      );
    }
    if (check) await check(ctx, p, problems);
    if (own) {
      const mine = problems.list.length;
      try {
        await own(ctx, raw);
      } catch (e) {
        if (errorCode(e) === 'ABORTED' || !(e instanceof StepError)) throw e;
        if (!(mine && NAMED_HERE.has(e.code))) problems.add(errorMessage(e));
      }
    }
    if (problems.list.length)
      throw new StepError('PREFLIGHT_FAILED', problems.list.join('; '), { problems: problems.list });
  };
}
