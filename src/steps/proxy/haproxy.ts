// HAProxy's runtime API (the stats socket, level admin): one command per connection, the answer is
// everything HAProxy writes before it closes. The only ProxyAdapter implementation shipped: a
// ProxySQL one (its admin interface speaks MySQL) can join behind the same interface once it can be
// tested against a real ProxySQL.
import net from 'node:net';
import { StepError } from '../../errors.js';
import type { ProxyAdapter, ProxyInfo, ServerAdminState, ServerView } from './adapter.js';

/** Sends one runtime API command; rejects on a socket error or after timeoutMs. */
export function runtimeCommand(socket: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((res, rej) => {
    const s = net.connect(socket);
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      rej(
        new StepError(
          'PROXY_TIMEOUT',
          `HAProxy at ${socket} did not answer "${command}" within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.end(`${command}\n`));
    s.on('data', (d: string) => {
      out += d;
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      rej(
        new StepError(
          'PROXY_UNREACHABLE',
          `cannot reach HAProxy's runtime API at ${socket} (${e.code ?? e.message}): is \`stats socket ${socket} level admin\` in its global section, and may this user open it?`,
        ),
      );
    });
    s.on('close', () => {
      clearTimeout(timer);
      res(out);
    });
  });
}

/** Runtime API answers that mean the command was refused (HAProxy answers errors as text). */
const REFUSED =
  /^(Unknown command|No such (backend|server|frontend)|Permission denied|Require '?admin|Can't find|Invalid|Unknown state|.*not found|.*expects)/im;

async function mustSucceed(socket: string, command: string): Promise<string> {
  const out = await runtimeCommand(socket, command);
  const line = out.trim().split('\n')[0] ?? '';
  if (REFUSED.test(line))
    throw new StepError('PROXY_COMMAND_REFUSED', `HAProxy at ${socket} refused "${command}": ${line}`);
  return out;
}

// `show servers state` columns (version 1 of the format: stable since 1.8).
// 0x04 (configured `disabled`) stays set after `state ready` in 2.6: only a memory, not maintenance.
const ADMIN_MAINT = 0x01 | 0x02 | 0x20 | 0x40; // forced, inherited, DNS resolution, hostname
const ADMIN_DRAIN = 0x08 | 0x10; // forced, inherited

function adminState(bits: number): ServerAdminState {
  if (bits & ADMIN_MAINT) return 'maint';
  if (bits & ADMIN_DRAIN) return 'drain';
  return 'ready';
}

function parseServersState(text: string, backend: string, sessions: Map<string, number>): ServerView[] {
  const rows: ServerView[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#') || /^\d+$/.test(line.trim())) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 19 || f[1] !== backend) continue;
    const name = f[3]!;
    rows.push({
      name,
      address: `${f[4]}:${f[18]}`,
      state: adminState(Number(f[6])),
      up: Number(f[5]) === 2,
      weight: Number(f[7]),
      sessions: sessions.get(name) ?? 0,
    });
  }
  return rows;
}

/** Current sessions per server of a backend, from `show stat` (CSV; scur is column 5). */
function parseSessions(csv: string, backend: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of csv.split('\n')) {
    const f = line.split(',');
    if (f[0] === backend && f[1] && f[1] !== 'BACKEND' && f[1] !== 'FRONTEND')
      out.set(f[1], Number(f[4]) || 0);
  }
  return out;
}

function parseInfo(text: string): ProxyInfo {
  const get = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { maxconn: get('Maxconn'), hardMaxconn: get('Hard_maxconn'), currentConnections: get('CurrConns') };
}

/**
 * How a hold works on HAProxy 2.6, found by experiment: `disable frontend` and `set maxconn
 * frontend` refuse (RST) or, when raised again, hang the CLI; the GLOBAL limit pauses every
 * listener with its queue intact and the kernel keeps completing handshakes into the backlog, so
 * clients wait instead of failing. Limit 1 with one parked connection holds everything new; the CLI
 * is exempt from the limit, so release() still gets through.
 */
export const HOLD_MAXCONN = 1;

interface Hold {
  plug: net.Socket;
  previous: number;
  timer: NodeJS.Timeout;
}
// Per runtime socket, in this process: the parked connection and the limit to restore.
const holds = new Map<string, Hold>();

function park(plug: string): Promise<net.Socket> {
  return new Promise((res, rej) => {
    const s = net.connect(plug);
    s.once('connect', () => {
      s.removeAllListeners('error');
      s.on('error', () => {});
      res(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      rej(
        new StepError(
          'PROXY_NO_PLUG',
          `cannot park a connection on ${plug} (${e.code ?? e.message}): the proxy needs a frontend bound there that keeps connections (tcp-request inspect-delay, accept if WAIT_END)`,
        ),
      ),
    );
  });
}

export function haproxy(socket: string): ProxyAdapter {
  const self: ProxyAdapter = {
    label: `HAProxy at ${socket}`,
    async level() {
      return (await runtimeCommand(socket, 'show cli level')).trim();
    },
    async servers(backend) {
      const [state, stat] = await Promise.all([
        mustSucceed(socket, `show servers state ${backend}`),
        mustSucceed(socket, 'show stat'),
      ]);
      if (/^Can't find backend/im.test(state))
        throw new StepError('PROXY_NO_BACKEND', `HAProxy at ${socket} has no backend "${backend}"`);
      return parseServersState(state, backend, parseSessions(stat, backend));
    },
    async setState(backend, server, state) {
      await mustSucceed(socket, `set server ${backend}/${server} state ${state}`);
    },
    async setWeight(backend, server, weight) {
      await mustSucceed(socket, `set server ${backend}/${server} weight ${weight}`);
    },
    async shutdownSessions(backend, server) {
      await mustSucceed(socket, `shutdown sessions server ${backend}/${server}`);
    },
    async info() {
      return parseInfo(await mustSucceed(socket, 'show info'));
    },
    async hold(plug, maxHoldMs) {
      if (holds.has(socket)) return;
      const before = parseInfo(await mustSucceed(socket, 'show info'));
      const conn = await park(plug);
      // The limit only holds while something counts against it: wait until the parked one does.
      const deadline = Date.now() + 2000;
      while (parseInfo(await mustSucceed(socket, 'show info')).currentConnections < HOLD_MAXCONN) {
        if (Date.now() > deadline) {
          conn.destroy();
          throw new StepError(
            'PROXY_NO_PLUG',
            `HAProxy at ${socket} did not count the connection parked on ${plug}`,
          );
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      const previous = before.maxconn === HOLD_MAXCONN ? before.hardMaxconn : before.maxconn;
      const timer = setTimeout(() => void self.release().catch(() => {}), maxHoldMs);
      timer.unref();
      holds.set(socket, { plug: conn, previous, timer });
      try {
        await mustSucceed(socket, `set maxconn global ${HOLD_MAXCONN}`);
      } catch (e) {
        await self.release(previous).catch(() => {});
        throw e;
      }
    },
    async holding() {
      return parseInfo(await mustSucceed(socket, 'show info')).maxconn === HOLD_MAXCONN;
    },
    async release(maxconn) {
      const h = holds.get(socket);
      const info = parseInfo(await mustSucceed(socket, 'show info'));
      const to = maxconn ?? h?.previous ?? info.hardMaxconn;
      const was = info.maxconn === HOLD_MAXCONN;
      if (was || info.maxconn !== to) await mustSucceed(socket, `set maxconn global ${to}`);
      if (h) {
        clearTimeout(h.timer);
        h.plug.destroy();
        holds.delete(socket);
      }
      return was;
    },
  };
  return self;
}
