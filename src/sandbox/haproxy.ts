// HAProxy in front of the pair: one frontend on its own loopback address (the sandbox's db port),
// backend `mysql` with servers old (ready) and new (maint), the runtime API as a 0600 unix socket in
// the sandbox, and a `hold` frontend whose only job is to park one connection so the proxy.hold kind
// can make every new client connection wait in the backlog. No health checks: a flip is the only
// thing that changes which server gets connections, so the state the steps read is theirs alone.
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { haproxy, runtimeCommand } from '../steps/proxy/haproxy.js';
import { sleep } from '../util/sleep.js';
import { DB_HOSTS, PROXY_HOST, type SandboxLayout } from './config.js';
import { SandboxError } from './errors.js';
import { type DetachedChild, spawnDetached } from './processes.js';
import { tcpAnswers } from './net.js';

const run = promisify(execFile);

export const PROXY_BACKEND = 'mysql';
export const PROXY_SERVERS = { old: 'old', new: 'new' } as const;
/** The seed's global connection limit (a hold lowers it; reset puts it back). */
export const PROXY_MAXCONN = 2000;
export const HAPROXY_APT_COMMAND = 'sudo apt-get install -y haproxy';

export interface ProxyLayout {
  root: string;
  config: string;
  /** The runtime API, level admin, mode 0600. */
  adminSocket: string;
  /** The `hold` frontend's socket (proxy.hold parks a connection there). */
  holdSocket: string;
  log: string;
}

export function proxyLayout(L: SandboxLayout): ProxyLayout {
  const root = join(L.dir, 'haproxy');
  // sun_path is 108 bytes: a deep checkout puts the sockets beside MariaDB's short ones.
  const short = join(root, 'admin.sock').length <= 100;
  return {
    root,
    config: join(root, 'haproxy.cfg'),
    adminSocket: short ? join(root, 'admin.sock') : join(L.socketDir, 'haproxy-admin.sock'),
    holdSocket: short ? join(root, 'hold.sock') : join(L.socketDir, 'haproxy-hold.sock'),
    log: join(L.logsDir, 'haproxy.log'),
  };
}

export function proxyConfig(P: ProxyLayout, dbPort: number): string {
  return `# written by \`cutover sandbox up\`
global
  maxconn ${PROXY_MAXCONN}
  stats socket ${P.adminSocket} mode 600 level admin

defaults
  mode tcp
  timeout connect 1s
  timeout client 1h
  timeout server 1h
  timeout queue 10s

frontend mysql
  bind ${PROXY_HOST}:${dbPort}
  default_backend ${PROXY_BACKEND}

backend ${PROXY_BACKEND}
  server ${PROXY_SERVERS.old} ${DB_HOSTS.old}:${dbPort}
  server ${PROXY_SERVERS.new} ${DB_HOSTS.new}:${dbPort} disabled

# Keeps whatever connects for a day without a server: the connection a hold parks.
frontend hold
  bind unix@${P.holdSocket} mode 600
  tcp-request inspect-delay 24h
  tcp-request content accept if WAIT_END
`;
}

function findHaproxy(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    try {
      accessSync(join(d, 'haproxy'), constants.X_OK);
      return join(d, 'haproxy');
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Finds haproxy; when missing and root on Debian, installs Debian's package (like MariaDB). */
export async function ensureHaproxy(log: (line: string) => void): Promise<string> {
  const found = findHaproxy();
  if (found) return found;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get'))
    throw new SandboxError(
      'HAPROXY_MISSING',
      `no haproxy binary found; install it with: ${HAPROXY_APT_COMMAND}`,
    );
  log("no haproxy found: installing Debian's haproxy with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // The package would start a system-wide HAProxy: policy-rc.d keeps it from doing so.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  try {
    if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 << 20 });
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'haproxy'], {
      env,
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    throw new SandboxError(
      'HAPROXY_INSTALL_FAILED',
      `apt-get could not install haproxy (${(e as Error).message.split('\n')[0]}); install it by hand: ${HAPROXY_APT_COMMAND}`,
      { cause: e },
    );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const installed = findHaproxy();
  if (!installed)
    throw new SandboxError('HAPROXY_MISSING', `haproxy still not found; check: ${HAPROXY_APT_COMMAND}`);
  return installed;
}

/** Writes the config and starts haproxy in the foreground of its own detached process. */
export function startProxy(bin: string, L: SandboxLayout, dbPort: number): DetachedChild {
  const P = proxyLayout(L);
  mkdirSync(P.root, { recursive: true });
  mkdirSync(L.socketDir, { recursive: true });
  writeFileSync(P.config, proxyConfig(P, dbPort));
  return spawnDetached(bin, ['-f', P.config, '-db'], { logFile: P.log });
}

export async function waitProxyReady(
  L: SandboxLayout,
  child: DetachedChild,
  dbPort: number,
  timeoutMs = 15_000,
): Promise<void> {
  const P = proxyLayout(L);
  let exited: number | null | undefined;
  void child.exited.then((c) => {
    exited = c;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== undefined)
      throw new SandboxError(
        'PROXY_START_FAILED',
        `haproxy exited during startup (code ${exited}); log: ${P.log}`,
      );
    const api = await runtimeCommand(P.adminSocket, 'show info', 1000).catch(() => '');
    if (/^Name: HAProxy/m.test(api) && (await tcpAnswers(PROXY_HOST, dbPort))) return;
    if (Date.now() > deadline)
      throw new SandboxError(
        'PROXY_START_TIMEOUT',
        `haproxy not ready after ${timeoutMs / 1000}s (log: ${P.log})`,
      );
    await sleep(50);
  }
}

/** Seed state: connections go to old, new in maint, no hold, nothing left open to new. */
export async function resetProxy(adminSocket: string): Promise<void> {
  const p = haproxy(adminSocket);
  await p.release(PROXY_MAXCONN);
  for (const s of Object.values(PROXY_SERVERS)) await p.setWeight(PROXY_BACKEND, s, 1);
  await p.setState(PROXY_BACKEND, PROXY_SERVERS.old, 'ready');
  await p.setState(PROXY_BACKEND, PROXY_SERVERS.new, 'maint');
  await p.shutdownSessions(PROXY_BACKEND, PROXY_SERVERS.new);
}
