// proxy.flip: move the proxy's MySQL backend from the old server to the new one. The flip does not
// wait on anything outside the database path: no DNS, no TTL. The servers' admin states and weights
// are journaled first; apply readies `to`, puts `from` in maintenance (no new connection reaches it),
// ends the sessions the proxy still holds to `from` and lets any held connections in; verify opens
// fresh connections through the proxy (a `databases:` entry pointing at it) and asks the server who
// it is, until each one is `to` — the proxy's own view of itself proves nothing about where bytes go.
// Undo puts every journaled state and weight back, ends the sessions on `to`, releases any hold and
// proves new connections land on `from` again the same way.
import { z } from 'zod';
import { connectMysql, type MysqlAdapter } from '../../adapters/mysql.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { DbName, ms } from '../mysql/common.js';
import {
  type ProxyAdapter,
  ProxyTarget,
  proxyAdapter,
  type ServerAdminState,
  type ServerView,
} from './adapter.js';

const Side = z.lazy(() =>
  z
    .object({
      server: z.string().min(1).describe('the server’s name in the proxy backend'),
      database: DbName.describe(
        'a databases: entry reaching that server directly: who it is (@@server_id, @@hostname) is what verify compares with',
      ),
    })
    .strict(),
);

const Params = z.lazy(() =>
  z
    .object({
      ...ProxyTarget,
      backend: z.string().min(1).describe('the backend in front of MySQL'),
      from: Side.describe('the server connections go to now (the old primary)'),
      to: Side.describe('the server they must go to (the new primary)'),
      via: DbName.describe(
        'a databases: entry connecting THROUGH the proxy, with an account that can log in on both servers during the window (the tool’s, not the application’s: a fence may lock that one)',
      ),
      cutSessions: z
        .boolean()
        .default(true)
        .describe(
          'end the connections the proxy still holds to `from` (default true: they would keep writing there)',
        ),
      connections: z
        .number()
        .int()
        .min(1)
        .max(50)
        .default(3)
        .describe('fresh connections through the proxy that must all land on `to` (default 3)'),
      verifyTimeout: Duration.default('10s').describe(
        'give up if new connections do not land on `to` within this',
      ),
      verifyInterval: Duration.default('100ms'),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

export interface ProxyServerState {
  name: string;
  state: ServerAdminState;
  weight: number;
}

export interface ProxyFlipSnapshot {
  socket: string;
  backend: string;
  /** Every server of the backend as it was: the undo puts each one back. */
  servers: ProxyServerState[];
  from: string;
  to: string;
  /** Server identities (`host:port:server_id`, or the uuid) reached directly. */
  fromKey: string;
  toKey: string;
}

type Outputs = {
  from: string;
  to: string;
  /** Sessions the proxy held to `from` when they were ended. */
  cut: number;
  /** Held connections were let in. */
  released: boolean;
};

async function proxyOf(ctx: StepContext, p: Pick<P, 'socket'>): Promise<ProxyAdapter> {
  return ctx.adapters.use(proxyAdapter, p.socket);
}

function find(servers: ServerView[], name: string, p: Pick<P, 'backend' | 'socket'>): ServerView {
  const s = servers.find((x) => x.name === name);
  if (!s)
    throw new StepError(
      'PROXY_NO_SERVER',
      `HAProxy at ${p.socket}: backend ${p.backend} has no server "${name}" (it has ${servers.map((x) => x.name).join(', ') || 'none'})`,
    );
  return s;
}

async function servers(ctx: StepContext, p: Pick<P, 'backend' | 'socket'>): Promise<ServerView[]> {
  const list = await (await proxyOf(ctx, p)).servers(p.backend);
  if (!list.length)
    throw new StepError(
      'PROXY_NO_BACKEND',
      `HAProxy at ${p.socket} has no backend "${p.backend}" (or it has no servers)`,
    );
  return list;
}

const noCounters = { countRead: () => {}, countWrite: () => {}, record: () => {} };

/** A fresh connection (never a pooled one: that would only say where an old connection went). */
async function identity(ctx: StepContext, database: string): Promise<string> {
  let a: MysqlAdapter | undefined;
  try {
    a = await connectMysql(ctx.database(database), 'live', noCounters);
    return a.server.key;
  } finally {
    await a?.close();
  }
}

/** New connections through `via` until `connections` in a row land on `want`, or the timeout. */
async function proveLanding(
  ctx: StepContext,
  p: P,
  want: string,
  wantName: string,
  otherKey: string,
): Promise<void> {
  await ctx.poll({
    what: `${p.connections} new connections through ${p.via} to land on ${wantName}`,
    timeoutMs: ms(p.verifyTimeout),
    intervalMs: ms(p.verifyInterval),
    check: async () => {
      const seen: string[] = [];
      for (let i = 0; i < p.connections; i++) {
        try {
          seen.push(await identity(ctx, p.via));
        } catch (e) {
          return { done: false, status: `connection through ${p.via} failed: ${(e as Error).message}` };
        }
        if (seen.at(-1) !== want) break;
      }
      const wrong = seen.filter((k) => k !== want);
      return {
        done: wrong.length === 0,
        status: wrong.length
          ? `a new connection landed on ${wrong[0] === otherKey ? 'the other server' : wrong[0]}`
          : `all on ${wantName}`,
      };
    },
  });
}

function stateLine(s: ProxyServerState): string {
  return `${s.state}, weight ${s.weight}`;
}

/**
 * Servers leaving first: for the few ms in between a new connection finds no server and fails, which
 * is safe; the other order would let it land on the server being left and write there.
 */
const ORDER: Record<ServerAdminState, number> = { maint: 0, drain: 1, ready: 2 };

export const proxyFlip = defineKind<P, ProxyFlipSnapshot, Outputs>({
  kind: 'proxy.flip',
  summary:
    'move the proxy’s MySQL backend from the old server to the new one (HAProxy runtime API): old sessions cut, held connections let in, new connections proven to land on the new server',
  params: Params,
  outputs: ['from', 'to', 'cut', 'released'],
  databases: (p) => [p.from.database, p.to.database, p.via],
  validate(p, v) {
    if (p.from.server === p.to.server) v.issue(['to', 'server'], 'from and to name the same proxy server');
    if (p.from.database === p.to.database) v.issue(['to', 'database'], 'from and to name the same database');
    if (p.via === p.from.database || p.via === p.to.database)
      v.issue(['via'], 'via must connect through the proxy, not to one server directly');
  },
  // Not an AWS API: no IAM permission; the runtime socket's file mode is its access control.
  iam: () => [],
  describe(p, snap) {
    const target = `${p.backend}`;
    if (!snap)
      return [
        `would set server ${target}/${p.to.server} ready and ${target}/${p.from.server} maint on HAProxy at ${p.socket}`,
        `${p.cutSessions ? `then: end its sessions to ${p.from.server}, ` : 'then: '}let held connections in, and check that new connections through ${p.via} land on ${p.to.database}`,
      ];
    const from = snap.servers.find((s) => s.name === snap.from)!;
    const to = snap.servers.find((s) => s.name === snap.to)!;
    return [
      `would set server ${target}/${snap.to} ready (was ${stateLine(to)})`,
      `would set server ${target}/${snap.from} maint (was ${stateLine(from)})`,
      ...(p.cutSessions ? [`would end the sessions HAProxy holds to ${snap.from}`] : []),
      `then: let held connections in; check that ${p.connections} new connections through ${p.via} land on ${p.to.database}`,
    ];
  },
  preflightReads: ['socket', 'backend', 'from', 'to'],
  async preflight(ctx, p) {
    const proxy = await proxyOf(ctx, p);
    const level = await proxy.level();
    if (level !== 'admin')
      throw new StepError(
        'PROXY_NOT_ADMIN',
        `HAProxy at ${p.socket} gives this socket level "${level}": changing servers needs \`stats socket … level admin\``,
      );
    const list = await servers(ctx, p);
    find(list, p.from.server, p);
    find(list, p.to.server, p);
  },
  async snapshot(ctx, p) {
    const list = await servers(ctx, p);
    find(list, p.from.server, p);
    find(list, p.to.server, p);
    const [fromKey, toKey] = await Promise.all([
      identity(ctx, p.from.database),
      identity(ctx, p.to.database),
    ]);
    if (fromKey === toKey)
      throw new StepError(
        'PROXY_SAME_SERVER',
        `${p.from.database} and ${p.to.database} are the same server (${fromKey}): a flip between them would prove nothing`,
      );
    return {
      socket: p.socket,
      backend: p.backend,
      servers: list.map((s) => ({ name: s.name, state: s.state, weight: s.weight })),
      from: p.from.server,
      to: p.to.server,
      fromKey,
      toKey,
    };
  },
  async apply(ctx, p, snap) {
    const proxy = await proxyOf(ctx, p);
    const to = snap.servers.find((s) => s.name === snap.to)!;
    const from = snap.servers.find((s) => s.name === snap.from)!;
    // A weight-0 server gets nothing even when ready: give it old's share.
    if (to.weight === 0) await proxy.setWeight(p.backend, snap.to, from.weight || 1);
    // `from` leaves before `to` is ready (see ORDER).
    await proxy.setState(p.backend, snap.from, 'maint');
    await proxy.setState(p.backend, snap.to, 'ready');
    let cut = 0;
    if (p.cutSessions) {
      cut = find(await servers(ctx, p), snap.from, p).sessions;
      await proxy.shutdownSessions(p.backend, snap.from);
    }
    // Last: what waited while the replica caught up now goes straight to `to`.
    const released = await proxy.release();
    if (released) ctx.log(`HAProxy at ${p.socket}: held connections let in, to ${snap.to}`);
    return { from: snap.from, to: snap.to, cut, released };
  },
  async verify(ctx, p, snap) {
    const now = await servers(ctx, p);
    const to = find(now, snap.to, p);
    const from = find(now, snap.from, p);
    if (to.state !== 'ready' || from.state !== 'maint')
      throw new StepError(
        'PROXY_FLIP_NOT_APPLIED',
        `HAProxy at ${p.socket}: ${snap.to} is ${to.state} and ${snap.from} ${from.state}, not ready and maint: check for another process using the runtime API`,
      );
    await proveLanding(ctx, p, snap.toKey, p.to.database, snap.fromKey);
    if (p.cutSessions) {
      const left = find(await servers(ctx, p), snap.from, p).sessions;
      if (left)
        throw new StepError(
          'PROXY_OLD_SESSIONS_LEFT',
          `HAProxy at ${p.socket} still holds ${left} session(s) to ${snap.from} after shutting them down`,
        );
    }
  },
  async isApplied(ctx, p, snap) {
    const now = await servers(ctx, p);
    if (find(now, snap.to, p).state !== 'ready' || find(now, snap.from, p).state !== 'maint') return false;
    // In place; what followed it (old sessions cut, hold released, the landing proof) may not have run.
    const proxy = await proxyOf(ctx, p);
    if (p.cutSessions) await proxy.shutdownSessions(p.backend, snap.from);
    await proxy.release();
    await proxyFlip.verify!(ctx, p, snap, { from: snap.from, to: snap.to, cut: 0, released: false });
    return true;
  },
  restoreHint(p, snap) {
    const api = (cmd: string) => `echo "${cmd}" | socat - UNIX:${p.socket}`;
    if (!snap)
      return [
        `check backend ${p.backend} on HAProxy at ${p.socket} (${api(`show servers state ${p.backend}`)}): its state was not journaled`,
      ];
    return [
      ...[...snap.servers]
        .sort((a, b) => ORDER[a.state] - ORDER[b.state])
        .map(
          (s) =>
            `put server ${p.backend}/${s.name} back to ${stateLine(s)}: ${api(`set server ${p.backend}/${s.name} state ${s.state}`)}; ${api(`set server ${p.backend}/${s.name} weight ${s.weight}`)}`,
        ),
      `end the sessions on ${snap.to}: ${api(`shutdown sessions server ${p.backend}/${snap.to}`)}`,
      `if new connections still wait (show info: Maxconn 1), let them in: ${api('set maxconn global <Hard_maxconn from show info>')}`,
    ];
  },
  async undo(ctx, p, snap) {
    const proxy = await proxyOf(ctx, p);
    const now = await servers(ctx, p);
    for (const s of [...snap.servers].sort((a, b) => ORDER[a.state] - ORDER[b.state])) {
      const cur = find(now, s.name, p);
      if (cur.weight !== s.weight) await proxy.setWeight(p.backend, s.name, s.weight);
      if (cur.state !== s.state) await proxy.setState(p.backend, s.name, s.state);
    }
    const to = snap.servers.find((s) => s.name === snap.to)!;
    // Whatever still writes to `to` through the proxy would split the writes: end it.
    if (to.state !== 'ready') await proxy.shutdownSessions(p.backend, snap.to);
    await proxy.release();
    const from = snap.servers.find((s) => s.name === snap.from)!;
    if (from.state === 'ready' && to.state !== 'ready')
      await proveLanding(ctx, p, snap.fromKey, p.from.database, snap.toKey);
    ctx.log(
      `HAProxy at ${p.socket}: backend ${p.backend} back to ${snap.servers.map((s) => `${s.name} ${s.state}`).join(', ')}`,
    );
  },
});
