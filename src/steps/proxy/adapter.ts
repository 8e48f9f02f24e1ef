// The proxy in front of MySQL, as the proxy.* kinds see it: servers of a backend with their admin
// state and weight, and a global connection limit (what a hold lowers). One implementation ships
// (HAProxy's runtime API, haproxy.ts); the dry run reads the real proxy and records every change.
import { z } from 'zod';
import type { AdapterFactory } from '../../adapters/adapters.js';
import { haproxy } from './haproxy.js';

export type ServerAdminState = 'ready' | 'drain' | 'maint';

export interface ServerView {
  name: string;
  /** host:port the proxy sends this server's connections to. */
  address: string;
  state: ServerAdminState;
  /** Health: false when checks mark it down (a server without checks is up). */
  up: boolean;
  weight: number;
  /** Connections the proxy holds open to this server right now. */
  sessions: number;
}

export interface ProxyInfo {
  /** The connection limit in force (a hold lowers it). */
  maxconn: number;
  /** The limit the proxy started with. */
  hardMaxconn: number;
  currentConnections: number;
}

export interface ProxyAdapter {
  readonly label: string;
  /** The access level of the API session ("admin" is needed to change anything). */
  level(): Promise<string>;
  servers(backend: string): Promise<ServerView[]>;
  setState(backend: string, server: string, state: ServerAdminState): Promise<void>;
  setWeight(backend: string, server: string, weight: number): Promise<void>;
  /** Ends every connection the proxy holds to that server (clients see the connection drop). */
  shutdownSessions(backend: string, server: string): Promise<void>;
  info(): Promise<ProxyInfo>;
  /**
   * Hold new connections: they wait in the listen backlog (the client sees a slow connect, not an
   * error) until release(), or until maxHoldMs pass (then released on its own: a hold must never
   * outlive a stalled run). `plug`: the proxy's socket that keeps one connection parked.
   */
  hold(plug: string, maxHoldMs: number): Promise<void>;
  /** Whether new connections are held now (by this process or one that died holding them). */
  holding(): Promise<boolean>;
  /** Let held connections in; `maxconn`: the limit to restore (default: the one held from, else the start-up one). */
  release(maxconn?: number): Promise<boolean>;
}

/** `ctx.adapters.use(proxyAdapter, socket)`: reads are real in both modes, changes recorded in dry run. */
export const proxyAdapter: AdapterFactory<ProxyAdapter, string> = {
  name: 'proxy',
  async live(env, socket) {
    const p = haproxy(socket);
    const write =
      <A extends unknown[]>(op: string, f: (...a: A) => Promise<void>) =>
      async (...a: A) => {
        env.countWrite(op);
        await f(...a);
      };
    return {
      ...p,
      setState: write('proxy.setState', p.setState),
      setWeight: write('proxy.setWeight', p.setWeight),
      shutdownSessions: write('proxy.shutdownSessions', p.shutdownSessions),
      hold: write('proxy.hold', p.hold),
      release: async (n?: number) => {
        env.countWrite('proxy.release');
        return p.release(n);
      },
    };
  },
  async dry(env, socket) {
    const p = haproxy(socket);
    const rec = (action: string, target: string, detail?: string) => {
      env.record({ action, target: `${p.label}: ${target}`, ...(detail ? { detail } : {}) });
      env.stats.recorded[`proxy.${action}`] = (env.stats.recorded[`proxy.${action}`] ?? 0) + 1;
    };
    return {
      ...p,
      async setState(b, s, state) {
        rec('set', `server ${b}/${s}`, `state ${state}`);
      },
      async setWeight(b, s, w) {
        rec('set', `server ${b}/${s}`, `weight ${w}`);
      },
      async shutdownSessions(b, s) {
        rec('shut down', `the sessions of server ${b}/${s}`);
      },
      async hold(plug) {
        rec('hold', 'new connections', `global maxconn 1, one connection parked on ${plug}`);
      },
      async release(n) {
        if (!(await p.holding())) return false;
        rec('release', 'held connections', n === undefined ? undefined : `global maxconn ${n}`);
        return true;
      },
    };
  },
};

/** The `with:` fields every proxy kind starts with: which proxy, and its admin socket. */
export const ProxyTarget = {
  proxy: z.literal('haproxy').default('haproxy').describe('the proxy’s kind (HAProxy’s runtime API)'),
  socket: z
    .string()
    .min(1)
    .describe('HAProxy’s runtime API: the unix socket of `stats socket … level admin`'),
};
