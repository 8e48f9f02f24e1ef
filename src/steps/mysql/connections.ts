import { z } from 'zod';
import type { MysqlAdapter, Position, Session } from '../../adapters/mysql.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { formatMs, StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { type BinlogWrites, describeWrites, nonService, writesBetween } from './binlog.js';
import {
  allowed,
  DbName,
  db,
  describeGroups,
  groupSessions,
  isClientSession,
  killSession,
  ms,
  requireKill,
  type SessionGroup,
} from './common.js';

const AllowUsers = z.lazy(() =>
  z
    .array(z.string().min(1))
    .default([])
    .describe(
      'sessions that may stay: "user" (any host) or "user@host" with % wildcards, e.g. "cutover", "monitor@10.0.5.%"',
    ),
);

/** Client sessions outside the allowlist (replication, server threads and the tool itself excluded). */
/** KILL returns before the thread ends, and a commit it had in flight can still reach the binlog. */
async function settle(
  ctx: StepContext,
  a: MysqlAdapter,
  deadline: number,
  ending: (s: Session) => boolean,
): Promise<void> {
  while (Date.now() < deadline && (await a.sessions()).some(ending)) await ctx.sleep(50);
}

async function outsiders(a: MysqlAdapter, allowUsers: readonly string[]): Promise<Session[]> {
  return (await a.sessions()).filter((s) => isClientSession(s) && !allowed(s, allowUsers));
}

// ---------------------------------------------------------------- mysql.connections

const ListParams = z.lazy(() =>
  z
    .object({
      on: DbName,
      allowUsers: AllowUsers,
      expectNone: z
        .boolean()
        .default(false)
        .describe('fail when any client session outside allowUsers is connected'),
    })
    .strict(),
);

export const connections = defineKind<
  z.infer<typeof ListParams>,
  undefined,
  { count: number; groups: SessionGroup[]; summary: string }
>({
  kind: 'mysql.connections',
  summary: 'list client sessions grouped by user@host (replication, server threads and the tool excluded)',
  params: ListParams,
  readOnly: true,
  outputs: ['count', 'groups', 'summary'],
  databases: (p) => [p.on],
  describe: (p) => [
    `would list client sessions on ${p.on}${p.expectNone ? ' and fail if any remain outside the allowlist' : ''}`,
  ],
  async apply(ctx, p) {
    const a = await db(ctx, p.on);
    await a.requirePrivilege('see-all-sessions', 'listing other accounts’ sessions');
    const list = await outsiders(a, p.allowUsers);
    const groups = groupSessions(list).map(({ ids: _ids, ...g }) => ({ ...g, ids: [] as number[] }));
    const summary = describeGroups(groups);
    ctx.log(`${a.label}: ${list.length} client session(s): ${summary}`);
    if (p.expectNone && list.length)
      throw new StepError(
        'SESSIONS_CONNECTED',
        `${a.label}: ${list.length} client session(s) connected: ${summary}`,
        { groups },
      );
    return { count: list.length, groups, summary };
  },
});

// ---------------------------------------------------------------- mysql.connections.drain

const DrainParams = z.lazy(() =>
  z
    .object({
      on: DbName,
      allowUsers: AllowUsers,
      timeout: Duration.default('60s').describe(
        'how long sessions get to end on their own (without kill), or to disappear after KILL',
      ),
      kill: z.boolean().default(false).describe('KILL the sessions still connected after the grace period'),
      grace: Duration.default('10s').describe('with kill: how long sessions may end on their own first'),
      quiet: Duration.default('2s').describe(
        'write-fence proof: the binlog/GTID position must not move for this long ("0" skips it)',
      ),
    })
    .strict(),
);
type DP = z.infer<typeof DrainParams>;

interface DrainSnap {
  /** Who was connected when the step started (journaled: the names the seed's team never had). */
  groups: Omit<SessionGroup, 'ids'>[];
}

interface DrainOut extends Record<string, unknown> {
  killed: number;
  killedSessions: string;
  connectedAtStart: string;
  position: string;
}

function positionText(p: Position): string {
  return [p.gtid && `gtid ${p.gtid}`, p.file && `${p.file}:${p.pos}`].filter(Boolean).join(', ') || 'unknown';
}

function samePosition(a: Position, b: Position): boolean {
  return a.gtid === b.gtid && a.file === b.file && a.pos === b.pos;
}

/**
 * M1: what moved the position. Rotation and service writes (rdsadmin heartbeats, mysql.rds_*,
 * account statements) are not the application: only the rest breaks the quiet interval. Without
 * coordinates (no BINLOG MONITOR) any movement counts, as before.
 */
async function appWritesBetween(
  a: MysqlAdapter,
  before: Position,
  after: Position,
): Promise<{ quiet: boolean; seen?: BinlogWrites }> {
  if (samePosition(before, after)) return { quiet: true };
  if (!before.file || before.pos === null || !after.file || after.pos === null) return { quiet: false };
  const seen = await writesBetween(
    a,
    { file: before.file, pos: before.pos },
    { file: after.file, pos: after.pos },
  );
  return { quiet: nonService(seen).length === 0, seen };
}

export const connectionsDrain = defineKind<DP, DrainSnap, DrainOut>({
  kind: 'mysql.connections.drain',
  summary:
    'wait for client sessions to end (optionally KILL them after a grace period), then prove no writes arrive',
  params: DrainParams,
  outputs: ['killed', 'killedSessions', 'connectedAtStart', 'position'],
  databases: (p) => [p.on],
  describe(p, snap) {
    const who = snap ? describeGroups(snap.groups.map((g) => ({ ...g, ids: [] }))) : 'client sessions';
    const lines = [
      `would wait up to ${formatMs(ms(p.kill ? p.grace : p.timeout))} for sessions on ${p.on} to end (now: ${who})`,
    ];
    if (p.kill) lines.push(`would KILL the sessions still connected after ${formatMs(ms(p.grace))}`);
    if (ms(p.quiet) > 0)
      lines.push(
        `would check that ${p.on} takes no application write for ${formatMs(ms(p.quiet))} (binlog rotation and service writes to the mysql schema are ignored)`,
      );
    if (p.allowUsers.length) lines.push(`  allowed to stay: ${p.allowUsers.join(', ')}`);
    return lines;
  },
  async snapshot(ctx, p) {
    const a = await db(ctx, p.on);
    await a.requirePrivilege(
      'see-all-sessions',
      'seeing other accounts’ sessions (without it they would look drained)',
    );
    return { groups: groupSessions(await outsiders(a, p.allowUsers)).map(({ ids: _ids, ...g }) => g) };
  },
  async apply(ctx, p, snap) {
    const a = await db(ctx, p.on);
    if (p.kill) await requireKill(a, 'ending other accounts’ sessions');
    const connectedAtStart = describeGroups(snap.groups.map((g) => ({ ...g, ids: [] })));
    const w = await a.waitFor<Session[]>({
      what: `client sessions on ${p.on} to end`,
      timeoutMs: ms(p.kill ? p.grace : p.timeout),
      intervalMs: 250,
      signal: ctx.signal,
      check: async () => {
        const left = await outsiders(a, p.allowUsers);
        return { done: left.length === 0, value: left, status: describeGroups(groupSessions(left)) };
      },
      onProgress: (status, deadline) =>
        ctx.progress({ label: `${p.on}: still connected: ${status}`, deadline }),
    });
    const killedWho: Session[] = [];
    if (!w.done && p.kill) {
      for (const s of w.value ?? []) {
        const who = `${s.user}@${s.host}`;
        if (await killSession(a, { id: s.id, who, reason: `${s.command} for ${s.time}s` })) killedWho.push(s);
      }
      if (killedWho.length)
        ctx.log(
          `${a.label}: ended ${killedWho.length} session(s): ${describeGroups(groupSessions(killedWho))}`,
        );
    }
    const pos = await a.position();
    return {
      killed: killedWho.length,
      killedSessions: killedWho.length ? describeGroups(groupSessions(killedWho)) : '',
      connectedAtStart,
      position: positionText(pos),
    };
  },
  async verify(ctx, p) {
    const a = await db(ctx, p.on);
    // After KILL the sessions go within moments; without kill apply already waited the full timeout.
    let remaining = await outsiders(a, p.allowUsers);
    const deadline = Date.now() + (p.kill ? Math.min(ms(p.timeout), 10_000) : 0);
    while (remaining.length && Date.now() < deadline) {
      await ctx.sleep(200);
      remaining = await outsiders(a, p.allowUsers);
    }
    if (remaining.length) {
      const groups = groupSessions(remaining);
      throw new StepError(
        'SESSIONS_REMAIN',
        `${a.label}: ${remaining.length} client session(s) still connected${p.kill ? ' after KILL' : ` after ${formatMs(ms(p.timeout))}`}: ${describeGroups(groups)} — ${p.kill ? 'they reconnect: fence them first (security group, maintenance)' : 'end them (kill: true), or add them to allowUsers'}`,
        { groups: groups.map(({ ids: _ids, ...g }) => g) },
      );
    }
    const quietMs = ms(p.quiet);
    if (quietMs <= 0) return;
    // A fence can take a moment to hold (security-group changes propagate): sessions that come back
    // are ended again and the quiet interval starts over, until the step's timeout.
    const fenceDeadline = Date.now() + ms(p.timeout);
    await settle(ctx, a, fenceDeadline, (s) => s.command === 'Killed');
    for (;;) {
      const before = await a.position();
      await ctx.sleep(quietMs);
      const after = await a.position();
      const moved = await appWritesBetween(a, before, after);
      if (moved.quiet) {
        if (moved.seen) ctx.log(`${a.label}: quiet for ${formatMs(quietMs)}: ${describeWrites(moved.seen)}`);
        return;
      }
      const now = (await a.sessions()).filter(isClientSession);
      const back = now.filter((x) => !allowed(x, p.allowUsers));
      if (p.kill && back.length && Date.now() + quietMs < fenceDeadline) {
        for (const s of back)
          await killSession(a, { id: s.id, who: `${s.user}@${s.host}`, reason: 'came back after KILL' });
        const killed = new Set(back.map((s) => s.id));
        await settle(ctx, a, fenceDeadline, (s) => killed.has(s.id));
        ctx.log(
          `${a.label}: ${back.length} session(s) came back during the quiet interval: ended them again (${describeGroups(groupSessions(back))})`,
        );
        continue;
      }
      const hint = back.length
        ? `sessions outside the allowlist are back: ${describeGroups(groupSessions(back))} — the fence (security group, maintenance mode) does not keep them out`
        : `connected now: ${describeGroups(groupSessions(now))}; check allowed accounts, events and replication into this server`;
      throw new StepError(
        'WRITES_NOT_FENCED',
        `${a.label}: the binlog position moved during the ${formatMs(quietMs)} quiet interval (${positionText(before)} → ${positionText(after)}${moved.seen ? `: ${describeWrites(moved.seen)}` : ''}): something still writes — ${hint}`,
        {
          before,
          after,
          ...(moved.seen ? { writes: moved.seen.transactions.filter((t) => t.class !== 'service') } : {}),
        },
      );
    }
  },
  async undo(ctx, p) {
    // Ended sessions cannot be brought back; clients reconnect on their own once the fence lifts.
    ctx.log(`nothing to undo on ${p.on}: ended sessions reconnect by themselves`);
  },
});
