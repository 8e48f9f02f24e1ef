// `cutover sandbox up|down|status` as functions: what the CLI, the vitest global setup and the
// demo script call. Everything runs on loopback; every process is tracked by pid in pids.json.
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sleep } from '../util/sleep.js';
import { resetApp, resetAws } from './admin-client.js';
import {
  ACCOUNTS,
  ADMIN_CIDR,
  APP_SUBNET_CIDR,
  BYPASS_CIDR,
  BYPASS_HEADER,
  BYPASS_LOCAL_ADDRESS,
  DB_HOSTS,
  DB_NAME,
  DB_ROLES,
  DEFAULT_INSYNC_DELAY_MS,
  DEFAULT_PORTS,
  MARKER_FILE,
  NEW_DB_NAME,
  NEW_SECURITY_GROUP_ID,
  OLD_DB_NAME,
  PROXY_HOST,
  RDS_CLUSTER_ID,
  RDS_INSTANCE_ID,
  RECORD_NAME,
  RECORD_TTL,
  REGION,
  SECURITY_GROUP_ID,
  SECURITY_GROUP_PORT,
  SEED_CRONTABS,
  SEED_MAINTENANCE,
  SERVICES_HOST,
  type SandboxLayout,
  type SandboxPorts,
  type ServicesConfig,
  sandboxLayout,
  ZONE_ID,
  ZONE_NAME,
} from './config.js';
import { readEnvFileAt, type SandboxEnv, writeEnvFile } from './env-file.js';
import { SandboxError } from './errors.js';
import { writeDbRoute, writeMaintenance } from './maintenance.js';
import { dbRouteFile } from './app-ctl.js';
import {
  ensureHaproxy,
  PROXY_BACKEND,
  PROXY_SERVERS,
  proxyLayout,
  resetProxy,
  startProxy,
  waitProxyReady,
} from './haproxy.js';
import { writeRehearsalFiles } from './rehearsal-files.js';
import { ensureMariadb, ensureTemplate, seedDatabases, startServer, waitServerReady } from './mariadb.js';
import { assertPortsFree, type PortClaim, tcpAnswers } from './net.js';
import { DEFAULT_PROFILE, type DbProfile, type GtidMode, type Platform } from './rds-platform.js';
import {
  belongsTo,
  type DetachedChild,
  type PidsFile,
  readPidsFile,
  spawnDetached,
  stopPids,
  writePidsFile,
} from './processes.js';

export type { SandboxPorts } from './config.js';
export { DEFAULT_PORTS } from './config.js';
export type { SandboxEnv } from './env-file.js';
export { SandboxError } from './errors.js';
export { captureSandboxState, type SandboxState } from './state.js';

export interface SandboxUpOptions {
  dir: string;
  ports?: Partial<SandboxPorts>;
  /** Progress lines (what starts where, how long it took). */
  log?: (line: string) => void;
  /** Default PENDING → INSYNC delay of Route 53 changes (ms); also settable at run time. */
  insyncDelayMs?: number;
  /** rds: the managed-platform profile (see rds-platform.ts); self (default): self-managed MariaDB. */
  platform?: Platform;
  /** off: file/position replication old → new. */
  gtid?: GtidMode;
  /** rds: seconds between rdsadmin heartbeats and binlog rotations (default 2). */
  heartbeatSeconds?: number;
}

export type { GtidMode, Platform } from './rds-platform.js';

/** The database profile an env file describes (written by `up`, read back by reset). */
export function profileOf(env: SandboxEnv): DbProfile {
  return {
    platform: env.SANDBOX_PLATFORM === 'rds' ? 'rds' : 'self',
    gtid: env.SANDBOX_GTID === 'off' ? 'off' : 'on',
    heartbeatSeconds: Number(env.SANDBOX_RDS_HEARTBEAT_SECONDS) || DEFAULT_PROFILE.heartbeatSeconds,
  };
}

const COMPONENTS = ['old', 'new', 'services', 'proxy'] as const;
const here = fileURLToPath(import.meta.url);

function resolvePorts(p: Partial<SandboxPorts> = {}): SandboxPorts {
  const ports = {
    ...DEFAULT_PORTS,
    ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
  } as SandboxPorts;
  for (const [k, v] of Object.entries(ports)) {
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      throw new SandboxError('BAD_PORT', `--${k}-port must be a port number (1-65535), got ${v}`, {
        badInput: true,
      });
  }
  if (ports.aws === ports.app)
    throw new SandboxError(
      'BAD_PORT',
      `the AWS endpoint and the demo app cannot share tcp/${ports.aws} on ${SERVICES_HOST}`,
      { badInput: true },
    );
  return ports;
}

function portClaims(ports: SandboxPorts): PortClaim[] {
  return [
    { what: 'MariaDB old', host: DB_HOSTS.old, port: ports.db, proto: 'tcp' },
    { what: 'MariaDB new', host: DB_HOSTS.new, port: ports.db, proto: 'tcp' },
    { what: 'MariaDB proxy (HAProxy)', host: PROXY_HOST, port: ports.db, proto: 'tcp' },
    { what: 'AWS endpoint', host: SERVICES_HOST, port: ports.aws, proto: 'tcp' },
    { what: 'DNS server', host: SERVICES_HOST, port: ports.dns, proto: 'udp' },
    { what: 'demo app', host: SERVICES_HOST, port: ports.app, proto: 'tcp' },
  ];
}

/** The services entry next to this file: TypeScript under vitest/tsx, compiled JS under dist/. */
function servicesCommand(configPath: string): string[] {
  const ext = extname(here);
  const entry = join(dirname(here), `services${ext}`);
  if (ext === '.ts') {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return ['--import', tsx, entry, configPath];
  }
  return [entry, configPath];
}

function appCtlPath(): string {
  if (extname(here) === '.js') return join(dirname(here), 'app-ctl.js');
  const dist = resolve(dirname(here), '..', '..', 'dist', 'sandbox', 'app-ctl.js');
  return existsSync(dist) ? dist : join(dirname(here), 'app-ctl.ts');
}

function buildEnv(
  L: SandboxLayout,
  ports: SandboxPorts,
  token: string,
  insyncDelayMs: number,
  profile: DbProfile,
): SandboxEnv {
  const aws = `http://${SERVICES_HOST}:${ports.aws}`;
  const app = `http://${SERVICES_HOST}:${ports.app}`;
  return {
    SANDBOX_DIR: L.dir,
    CUTOVER_AWS_ENDPOINT: aws,
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'sandbox',
    AWS_SECRET_ACCESS_KEY: 'sandbox',
    SANDBOX_ADMIN_URL: `${aws}/_sandbox`,
    SANDBOX_OLD_DB_HOST: DB_HOSTS.old,
    SANDBOX_NEW_DB_HOST: DB_HOSTS.new,
    SANDBOX_DB_PORT: String(ports.db),
    // HAProxy in front of the pair (seed: connections go to old).
    SANDBOX_PROXY_HOST: PROXY_HOST,
    SANDBOX_PROXY_PORT: String(ports.db),
    SANDBOX_PROXY_SOCKET: proxyLayout(L).adminSocket,
    SANDBOX_PROXY_HOLD_SOCKET: proxyLayout(L).holdSocket,
    SANDBOX_PROXY_BACKEND: PROXY_BACKEND,
    SANDBOX_PROXY_OLD_SERVER: PROXY_SERVERS.old,
    SANDBOX_PROXY_NEW_SERVER: PROXY_SERVERS.new,
    SANDBOX_DB_OLD_NAME: OLD_DB_NAME,
    SANDBOX_DB_NEW_NAME: NEW_DB_NAME,
    SANDBOX_DB_USER: ACCOUNTS.tool.user,
    SANDBOX_DB_PASSWORD: ACCOUNTS.tool.password,
    SANDBOX_APP_DB_USER: ACCOUNTS.app.user,
    SANDBOX_APP_DB_PASSWORD: ACCOUNTS.app.password,
    SANDBOX_DB_REPL_USER: ACCOUNTS.repl.user,
    SANDBOX_DB_REPL_PASSWORD: ACCOUNTS.repl.password,
    SANDBOX_DB_NAME: DB_NAME,
    SANDBOX_OLD_DB_SOCKET: L.db.old.socket,
    SANDBOX_NEW_DB_SOCKET: L.db.new.socket,
    SANDBOX_DNS_HOST: SERVICES_HOST,
    SANDBOX_DNS_PORT: String(ports.dns),
    SANDBOX_DNS_SERVER: `${SERVICES_HOST}:${ports.dns}`,
    SANDBOX_ZONE_ID: ZONE_ID,
    SANDBOX_ZONE_NAME: ZONE_NAME,
    SANDBOX_RECORD_NAME: RECORD_NAME,
    SANDBOX_RECORD_TYPE: 'CNAME',
    SANDBOX_RECORD_TTL: String(RECORD_TTL),
    SANDBOX_SECURITY_GROUP_ID: SECURITY_GROUP_ID,
    SANDBOX_NEW_SECURITY_GROUP_ID: NEW_SECURITY_GROUP_ID,
    SANDBOX_SECURITY_GROUP_PORT: String(SECURITY_GROUP_PORT),
    SANDBOX_APP_SUBNET_CIDR: APP_SUBNET_CIDR,
    SANDBOX_ADMIN_CIDR: ADMIN_CIDR,
    SANDBOX_RDS_CLUSTER_ID: RDS_CLUSTER_ID,
    SANDBOX_RDS_INSTANCE_ID: RDS_INSTANCE_ID,
    SANDBOX_INSYNC_DELAY_MS: String(insyncDelayMs),
    SANDBOX_APP_URL: `${app}/`,
    SANDBOX_APP_MOBILE_URL: `${app}/api/mobile/products`,
    SANDBOX_APP_HEALTH_URL: `${app}/healthz`,
    SANDBOX_APP_ADMIN_URL: `${app}/_admin`,
    SANDBOX_APP_BYPASS_HEADER: BYPASS_HEADER,
    SANDBOX_APP_BYPASS_TOKEN: token,
    SANDBOX_APP_BYPASS_CIDR: BYPASS_CIDR,
    SANDBOX_APP_BYPASS_LOCAL_ADDRESS: BYPASS_LOCAL_ADDRESS,
    SANDBOX_MAINTENANCE_FILE: L.maintenanceFile,
    SANDBOX_APP_CTL: appCtlPath(),
    SANDBOX_CRONTAB_APP1: L.crontabs.app1,
    SANDBOX_CRONTAB_APP2: L.crontabs.app2,
    SANDBOX_PLATFORM: profile.platform,
    SANDBOX_GTID: profile.gtid,
    SANDBOX_RDS_HEARTBEAT_SECONDS: String(profile.heartbeatSeconds),
  };
}

/** The directory as given and, when it is a symlink, as resolved: processes name one or the other. */
function dirMarkers(L: SandboxLayout): string[] {
  const markers = [`${L.dir}/`];
  try {
    const real = realpathSync(L.dir);
    if (real !== L.dir) markers.push(`${real}/`);
  } catch {
    // missing or dangling: the given path is all there is
  }
  return markers;
}

function ownPids(L: SandboxLayout, pids: PidsFile | undefined): Record<string, number> {
  const markers = dirMarkers(L);
  return Object.fromEntries(
    Object.entries(pids?.pids ?? {}).filter(([, pid]) => markers.some((m) => belongsTo(pid, m))),
  );
}

function symlinkTarget(path: string): string | undefined {
  try {
    return lstatSync(path).isSymbolicLink() ? resolve(dirname(path), readlinkSync(path)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The marker, or failing that (someone deleted it) the services config naming this very
 * directory: either way `down` may stop what runs there and remove it, and nothing else.
 */
function isSandboxDir(L: SandboxLayout): boolean {
  if (existsSync(L.marker)) return true;
  try {
    return (JSON.parse(readFileSync(L.servicesConfig, 'utf8')) as ServicesConfig).dir === L.dir;
  } catch {
    return false;
  }
}

function removeSandboxDir(L: SandboxLayout): void {
  // A --dir that is a symlink (someone pointed .sandbox elsewhere) keeps its link; its target goes.
  rmSync(symlinkTarget(L.dir) ?? L.dir, { recursive: true, force: true, maxRetries: 3 });
  if (!L.socketDir.startsWith(`${L.dir}/`)) rmSync(L.socketDir, { recursive: true, force: true });
}

function writeSeedFiles(L: SandboxLayout): void {
  writeMaintenance(L.maintenanceFile, SEED_MAINTENANCE);
  writeDbRoute(dbRouteFile(L.dir), 'dns');
  for (const host of ['app1', 'app2'] as const) {
    mkdirSync(dirname(L.crontabs[host]), { recursive: true });
    writeFileSync(L.crontabs[host], SEED_CRONTABS[host]);
  }
}

function logTail(file: string): string {
  try {
    return (
      readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .at(-1)
        ?.replace(/^\S+Z /, '') ?? 'no output'
    );
  } catch {
    return 'no output';
  }
}

async function waitServicesReady(
  L: SandboxLayout,
  child: DetachedChild,
  ports: SandboxPorts,
  timeoutMs = 30_000,
): Promise<void> {
  let exited: number | null | undefined;
  void child.exited.then((c) => {
    exited = c;
  });
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(L.servicesReady)) {
    if (exited !== undefined) {
      const tail = logTail(L.servicesLog);
      // Another process took the port between our check and the bind.
      if (/EADDRINUSE/.test(tail)) {
        throw new SandboxError(
          'PORT_IN_USE',
          `${tail.replace(/^startup failed: /, '')}: in use by another process`,
          { badInput: true },
        );
      }
      throw new SandboxError(
        'SERVICES_START_FAILED',
        `sandbox services exited during startup (code ${exited}): ${tail} (log: ${L.servicesLog})`,
      );
    }
    if (Date.now() > deadline)
      throw new SandboxError(
        'SERVICES_START_TIMEOUT',
        `sandbox services not ready after ${timeoutMs / 1000}s (log: ${L.servicesLog})`,
      );
    await sleep(20);
  }
  for (const port of [ports.aws, ports.app]) {
    if (!(await tcpAnswers(SERVICES_HOST, port)))
      throw new SandboxError(
        'SERVICES_NOT_LISTENING',
        `nothing answers on ${SERVICES_HOST}:${port} although the services said ready (log: ${L.servicesLog})`,
      );
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** Starts the sandbox in dir (idempotent: when it already runs, returns its env). */
export async function sandboxUp(opts: SandboxUpOptions): Promise<SandboxEnv> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const L = sandboxLayout(opts.dir);
  const ports = resolvePorts(opts.ports);
  const insyncDelayMs = opts.insyncDelayMs ?? DEFAULT_INSYNC_DELAY_MS;
  const profile: DbProfile = {
    platform: opts.platform ?? DEFAULT_PROFILE.platform,
    gtid: opts.gtid ?? DEFAULT_PROFILE.gtid,
    heartbeatSeconds: opts.heartbeatSeconds ?? DEFAULT_PROFILE.heartbeatSeconds,
  };

  const recorded = readPidsFile(L.pidsFile);
  if (recorded && existsSync(L.marker)) {
    const alive = ownPids(L, recorded);
    const complete = COMPONENTS.every((c) => alive[c] !== undefined);
    if (complete && existsSync(L.envFile)) {
      log(`already up in ${L.dir} (pids ${COMPONENTS.map((c) => `${c} ${alive[c]}`).join(', ')})`);
      const asked = opts.ports ? resolvePorts(opts.ports) : undefined;
      const running = readSandboxEnv(L.dir);
      if (
        (opts.platform && opts.platform !== profileOf(running).platform) ||
        (opts.gtid && opts.gtid !== profileOf(running).gtid)
      ) {
        log(
          `note: it runs --platform ${profileOf(running).platform} --gtid ${profileOf(running).gtid}; run \`cutover sandbox down\` first to change them`,
        );
      }
      if (asked && JSON.stringify(asked) !== JSON.stringify(recorded.ports)) {
        log(
          `note: it runs on ports ${JSON.stringify(recorded.ports)}; run \`cutover sandbox down\` first to change them`,
        );
      }
      return running;
    }
    const pids = Object.values(alive);
    log(
      `sandbox in ${L.dir} is only partly running${pids.length ? ` (stopping pids ${pids.join(', ')})` : ''}: starting it afresh`,
    );
    await stopPids(pids);
  }
  if (existsSync(L.dir)) {
    if (!existsSync(L.marker) && readdirSync(L.dir).length) {
      throw new SandboxError(
        'NOT_A_SANDBOX',
        `${L.dir} exists and is not a sandbox directory (no ${MARKER_FILE}); pick another --dir`,
        { badInput: true },
      );
    }
    removeSandboxDir(L);
  }

  await assertPortsFree(portClaims(ports));
  const bins = await ensureMariadb(log);
  const haproxyBin = await ensureHaproxy(log);
  const template = await ensureTemplate(bins, log);

  const linked = symlinkTarget(L.dir);
  if (linked) mkdirSync(linked, { recursive: true });
  mkdirSync(L.logsDir, { recursive: true });
  writeFileSync(
    L.marker,
    'created by `cutover sandbox up`; `cutover sandbox down` stops its processes and removes this directory\n',
  );
  writeSeedFiles(L);
  const token = randomBytes(12).toString('hex');
  const cfg: ServicesConfig = {
    dir: L.dir,
    ports,
    bypassToken: token,
    insyncDelayMs,
    maintenanceFile: L.maintenanceFile,
    readyFile: L.servicesReady,
    platform: profile.platform,
  };
  writeFileSync(L.servicesConfig, `${JSON.stringify(cfg, null, 2)}\n`);

  const record: PidsFile = { startedAt: new Date().toISOString(), ports, pids: {} };
  const track = (name: string, child: DetachedChild) => {
    record.pids[name] = child.pid;
    writePidsFile(L.pidsFile, record);
    return child;
  };
  try {
    const env = { ...process.env };
    // The services child must not inherit a debugger or loader meant for this process.
    delete env.NODE_OPTIONS;
    const services = track(
      'services',
      spawnDetached(process.execPath, servicesCommand(L.servicesConfig), { logFile: L.servicesLog, env }),
    );
    const servers = await Promise.all(
      DB_ROLES.map(async (role) =>
        track(role, await startServer(bins, template, L.db[role], ports.db, profile)),
      ),
    );
    const proxy = track('proxy', startProxy(haproxyBin, L, ports.db));
    await Promise.all([
      ...DB_ROLES.map((role, i) => waitServerReady(L.db[role], servers[i]!.pid, ports.db)),
      waitServicesReady(L, services, ports),
      waitProxyReady(L, proxy, ports.db),
    ]);
    const tServers = performance.now();
    log(
      `MariaDB ${bins.version}: old ${DB_HOSTS.old}:${ports.db} (pid ${record.pids.old}), new ${DB_HOSTS.new}:${ports.db} (pid ${record.pids.new}) — ${seconds(tServers - t0)}`,
    );
    log(
      `HAProxy ${PROXY_HOST}:${ports.db} → old (backend ${PROXY_BACKEND}: old ready, new maint; runtime API ${proxyLayout(L).adminSocket}) (pid ${record.pids.proxy})`,
    );
    log(
      `AWS endpoint http://${SERVICES_HOST}:${ports.aws}, DNS udp ${SERVICES_HOST}:${ports.dns}, demo app http://${SERVICES_HOST}:${ports.app}/ (pid ${record.pids.services})`,
    );
    await seedDatabases({ old: L.db.old.socket, new: L.db.new.socket }, ports.db, profile);
    log(
      `seeded accounts ${ACCOUNTS.tool.user}/${ACCOUNTS.app.user}/${ACCOUNTS.repl.user} and schema ${DB_NAME}; replication old → new running (${profile.gtid === 'on' ? 'GTID' : 'binlog file/position'})${profile.platform === 'rds' ? `; managed platform: RDS-master privileges, mysql.rds_* procedures, rdsadmin heartbeat + binlog rotation every ${profile.heartbeatSeconds}s` : ''} — ${seconds(performance.now() - tServers)}`,
    );
    const sandboxEnv = buildEnv(L, ports, token, insyncDelayMs, profile);
    writeEnvFile(L.envFile, sandboxEnv, [
      'cutover sandbox: source this file (set -a; . .sandbox/env; set +a); runbooks read it through envFiles',
    ]);
    writeRehearsalFiles(sandboxEnv);
    log(`up in ${seconds(performance.now() - t0)}; env: ${L.envFile}`);
    return sandboxEnv;
  } catch (e) {
    await stopPids(Object.values(record.pids));
    if (e instanceof SandboxError) throw e;
    throw new SandboxError(
      'SANDBOX_UP_FAILED',
      `sandbox up failed: ${(e as Error).message} (logs in ${L.logsDir})`,
      { cause: e },
    );
  }
}

export interface SandboxDownResult {
  dir: string;
  stopped: Record<string, number>;
  /** Pids that ignored SIGTERM and had to be killed. */
  killed: number[];
  removed: boolean;
}

/** Stops what `up` started (by recorded pid only) and removes the directory. */
export async function sandboxDown(opts: {
  dir: string;
  log?: (line: string) => void;
}): Promise<SandboxDownResult> {
  const log = opts.log ?? (() => undefined);
  const L = sandboxLayout(opts.dir);
  if (!existsSync(L.dir)) {
    log(`no sandbox in ${L.dir}: nothing to stop`);
    return { dir: L.dir, stopped: {}, killed: [], removed: false };
  }
  if (!isSandboxDir(L)) {
    throw new SandboxError(
      'NOT_A_SANDBOX',
      `${L.dir} is not a sandbox directory (no ${MARKER_FILE}); refusing to remove it`,
      { badInput: true },
    );
  }
  const t0 = performance.now();
  const own = ownPids(L, readPidsFile(L.pidsFile));
  const { killed, stillAlive } = await stopPids(Object.values(own));
  if (stillAlive.length) {
    throw new SandboxError(
      'STOP_FAILED',
      `pids ${stillAlive.join(', ')} did not stop even after SIGKILL; ${L.dir} was kept`,
    );
  }
  removeSandboxDir(L);
  const names = Object.entries(own).map(([n, pid]) => `${n} ${pid}`);
  log(
    `stopped ${names.length ? names.join(', ') : 'nothing (no live process)'}${killed.length ? ` (killed ${killed.join(', ')})` : ''}; removed ${L.dir} — ${seconds(performance.now() - t0)}`,
  );
  return { dir: L.dir, stopped: own, killed, removed: true };
}

export interface ComponentStatus {
  name: string;
  pid: number | null;
  running: boolean;
  /** The component answers on its address (TCP connect, or a DNS query). */
  answering: boolean;
  address: string;
}

export interface SandboxStatus {
  dir: string;
  up: boolean;
  startedAt: string | null;
  ports: SandboxPorts | null;
  envFile: string | null;
  components: ComponentStatus[];
}

async function dnsAnswers(port: number): Promise<boolean> {
  const r = new Resolver({ timeout: 500, tries: 1 });
  r.setServers([`${SERVICES_HOST}:${port}`]);
  try {
    await r.resolveSoa(ZONE_NAME.replace(/\.$/, ''));
    return true;
  } catch {
    return false;
  }
}

export async function sandboxStatus(opts: { dir: string }): Promise<SandboxStatus> {
  const L = sandboxLayout(opts.dir);
  const recorded = existsSync(L.marker) ? readPidsFile(L.pidsFile) : undefined;
  if (!recorded)
    return { dir: L.dir, up: false, startedAt: null, ports: null, envFile: null, components: [] };
  const alive = ownPids(L, recorded);
  const p = recorded.ports;
  const pid = (n: string) => recorded.pids[n] ?? null;
  const components: ComponentStatus[] = await Promise.all([
    (async () => ({
      name: 'mariadb old',
      pid: pid('old'),
      running: 'old' in alive,
      answering: await tcpAnswers(DB_HOSTS.old, p.db),
      address: `${DB_HOSTS.old}:${p.db}`,
    }))(),
    (async () => ({
      name: 'mariadb new',
      pid: pid('new'),
      running: 'new' in alive,
      answering: await tcpAnswers(DB_HOSTS.new, p.db),
      address: `${DB_HOSTS.new}:${p.db}`,
    }))(),
    (async () => ({
      name: 'haproxy',
      pid: pid('proxy'),
      running: 'proxy' in alive,
      answering: await tcpAnswers(PROXY_HOST, p.db),
      address: `${PROXY_HOST}:${p.db}`,
    }))(),
    (async () => ({
      name: 'aws endpoint',
      pid: pid('services'),
      running: 'services' in alive,
      answering: await tcpAnswers(SERVICES_HOST, p.aws),
      address: `http://${SERVICES_HOST}:${p.aws}`,
    }))(),
    (async () => ({
      name: 'dns',
      pid: pid('services'),
      running: 'services' in alive,
      answering: await dnsAnswers(p.dns),
      address: `udp ${SERVICES_HOST}:${p.dns}`,
    }))(),
    (async () => ({
      name: 'demo app',
      pid: pid('services'),
      running: 'services' in alive,
      answering: await tcpAnswers(SERVICES_HOST, p.app),
      address: `http://${SERVICES_HOST}:${p.app}/`,
    }))(),
  ]);
  return {
    dir: L.dir,
    up: components.every((c) => c.running && c.answering),
    startedAt: recorded.startedAt,
    ports: p,
    envFile: existsSync(L.envFile) ? L.envFile : null,
    components,
  };
}

/** The env file of a running sandbox as a record. */
export function readSandboxEnv(dir: string): SandboxEnv {
  const L = sandboxLayout(dir);
  if (!existsSync(L.envFile)) {
    throw new SandboxError(
      'SANDBOX_NOT_UP',
      `no sandbox env file at ${L.envFile}; start it with: cutover sandbox up --dir ${dir}`,
      { badInput: true },
    );
  }
  return readEnvFileAt(L.envFile);
}

/**
 * Back to the seed: AWS state (and faults, counters, INSYNC delay), DNS, maintenance off, crontabs,
 * and both databases re-seeded (all non-system schemas dropped and recreated, accounts recreated,
 * old writable, new read_only replicating from old by GTID, no reverse replication), and the proxy
 * sending connections to old again (new in maint, no hold).
 */
export async function resetSandbox(
  env: SandboxEnv,
  override: Partial<Pick<DbProfile, 'gtid'>> = {},
): Promise<void> {
  // Writing the seed files into a sandbox that was taken down would resurrect its directory.
  const L = sandboxLayout(env.SANDBOX_DIR);
  if (!isSandboxDir(L)) {
    throw new SandboxError('SANDBOX_NOT_UP', `no sandbox in ${env.SANDBOX_DIR} to reset`, { badInput: true });
  }
  // A component that died cannot be reset (its socket refuses): say which, and what restarts it.
  const alive = ownPids(L, readPidsFile(L.pidsFile));
  const dead = COMPONENTS.filter((c) => alive[c] === undefined);
  if (dead.length)
    throw new SandboxError(
      'SANDBOX_PARTLY_DOWN',
      `the sandbox in ${env.SANDBOX_DIR} is only partly running (${dead.join(', ')} not running): \`cutover sandbox up --dir ${env.SANDBOX_DIR}\` starts it afresh, in its seed state`,
      { badInput: true },
    );
  await Promise.all([
    resetAws(env),
    seedDatabases(
      { old: env.SANDBOX_OLD_DB_SOCKET, new: env.SANDBOX_NEW_DB_SOCKET },
      Number(env.SANDBOX_DB_PORT),
      { ...profileOf(env), ...override },
    ),
    (async () => {
      writeMaintenance(env.SANDBOX_MAINTENANCE_FILE, SEED_MAINTENANCE);
      writeDbRoute(dbRouteFile(env.SANDBOX_DIR), 'dns');
      for (const host of ['app1', 'app2'] as const) {
        const file = host === 'app1' ? env.SANDBOX_CRONTAB_APP1 : env.SANDBOX_CRONTAB_APP2;
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, SEED_CRONTABS[host]);
      }
    })(),
  ]);
  await resetApp(env);
  // A sandbox started before the proxy existed has no socket: nothing to put back.
  if (env.SANDBOX_PROXY_SOCKET) await resetProxy(env.SANDBOX_PROXY_SOCKET);
}
