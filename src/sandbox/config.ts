// Fixed facts of the sandbox: addresses, names, accounts and the on-disk layout. Everything that
// more than one sandbox process needs to agree on lives here, so `up`, the services child, the
// reset and the state capture cannot drift apart.
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface SandboxPorts {
  /** MariaDB, the same port on both server addresses. */
  db: number;
  /** AWS-compatible HTTP endpoint (EC2, Route 53, RDS) and the /_sandbox admin routes. */
  aws: number;
  /** Authoritative DNS for the sandbox zone, UDP. */
  dns: number;
  /** Demo application (web, mobile API, /_admin). */
  app: number;
}

export const DEFAULT_PORTS: SandboxPorts = { db: 33306, aws: 4566, dns: 10053, app: 18080 };
export const DEFAULT_DIR = '.sandbox';

export const SERVICES_HOST = '127.0.0.1';
export const DB_HOSTS = { old: '127.0.0.2', new: '127.0.0.3' } as const;
/** HAProxy in front of the pair, on the db port of its own address. */
export const PROXY_HOST = '127.0.0.4';
export type DbRole = keyof typeof DB_HOSTS;
export const DB_ROLES: readonly DbRole[] = ['old', 'new'];
export const SERVER_IDS: Record<DbRole, number> = { old: 1, new: 2 };

export const ACCOUNT_ID = '000000000000';
export const REGION = 'us-east-1';
export const VPC_ID = 'vpc-0sandbox00000001';

export const ZONE_ID = 'Z0SANDBOX0001';
export const ZONE_NAME = 'sandbox.internal.';
export const RECORD_NAME = 'db.sandbox.internal';
export const RECORD_TTL = 1;
export const OLD_DB_NAME = 'old.db.sandbox.internal';
export const NEW_DB_NAME = 'new.db.sandbox.internal';
export const NEW_DB_READER_NAME = 'new-ro.db.sandbox.internal';

export const SECURITY_GROUP_ID = 'sg-0sandbox0000001';
export const NEW_SECURITY_GROUP_ID = 'sg-0sandbox0000002';
/** The port the security group rules talk about: production's, not the sandbox listener's. */
export const SECURITY_GROUP_PORT = 3306;
export const APP_SUBNET_CIDR = '127.0.0.0/24';
export const ADMIN_CIDR = '10.0.9.0/24';

export const RDS_CLUSTER_ID = 'sandbox-aurora';
export const RDS_INSTANCE_ID = 'sandbox-aurora-1';

export const DB_NAME = 'shop';
export const ACCOUNTS = {
  tool: { user: 'cutover', password: 'cutover-sandbox' },
  app: { user: 'app', password: 'app-sandbox' },
  repl: { user: 'repl', password: 'repl-sandbox' },
} as const;

export const BYPASS_HEADER = 'X-Cutover-Bypass';
export const BYPASS_CIDR = '127.0.0.8/29';
export const BYPASS_LOCAL_ADDRESS = '127.0.0.9';

export const DEFAULT_INSYNC_DELAY_MS = 1000;
export const MARKER_FILE = '.cutover-sandbox';

export interface DbLayout {
  role: DbRole;
  root: string;
  datadir: string;
  socket: string;
  pidFile: string;
  errorLog: string;
}

export interface SandboxLayout {
  dir: string;
  marker: string;
  envFile: string;
  pidsFile: string;
  servicesConfig: string;
  servicesReady: string;
  logsDir: string;
  servicesLog: string;
  appDir: string;
  maintenanceFile: string;
  crontabs: { app1: string; app2: string };
  /** Where sockets go when the sandbox path is too long for a unix socket; removed by `down`. */
  socketDir: string;
  db: Record<DbRole, DbLayout>;
}

// sun_path is 108 bytes on Linux; a deep checkout would otherwise make mariadbd refuse to start.
const MAX_SOCKET_PATH = 100;

export function sandboxLayout(dirInput: string): SandboxLayout {
  const dir = resolve(dirInput);
  const inDir = join(dir, 'mariadb', 'old', 'mysqld.sock').length <= MAX_SOCKET_PATH;
  const socketDir = inDir
    ? join(dir, 'mariadb')
    : join(tmpdir(), `cutover-sock-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`);
  const db = (role: DbRole): DbLayout => {
    const root = join(dir, 'mariadb', role);
    return {
      role,
      root,
      datadir: join(root, 'data'),
      socket: inDir ? join(root, 'mysqld.sock') : join(socketDir, `${role}.sock`),
      pidFile: join(root, 'mysqld.pid'),
      errorLog: join(dir, 'logs', `mariadb-${role}.log`),
    };
  };
  return {
    dir,
    marker: join(dir, MARKER_FILE),
    envFile: join(dir, 'env'),
    pidsFile: join(dir, 'pids.json'),
    servicesConfig: join(dir, 'services.json'),
    servicesReady: join(dir, 'services.ready'),
    logsDir: join(dir, 'logs'),
    servicesLog: join(dir, 'logs', 'services.log'),
    appDir: join(dir, 'app'),
    maintenanceFile: join(dir, 'app', 'maintenance.json'),
    crontabs: { app1: join(dir, 'hosts', 'app1', 'crontab'), app2: join(dir, 'hosts', 'app2', 'crontab') },
    socketDir,
    db: { old: db('old'), new: db('new') },
  };
}

/** Seed crontabs of the two app hosts; the first job carries shell metacharacters on purpose. */
export const SEED_CRONTABS = {
  app1: [
    '# app1: shop application host (sandbox)',
    'MAILTO=ops@example.com',
    '*/5 * * * * cd /srv/app && ./bin/sync --since "$(date +\\%F)" >> /var/log/sync.log 2>&1',
    '*/1 * * * * /srv/app/bin/send-queued-emails --batch 50',
    '0 3 * * * /srv/app/bin/cleanup-sessions --older-than 7d',
    '',
  ].join('\n'),
  app2: [
    '# app2: shop application host (sandbox)',
    "15 * * * * /srv/app/bin/reindex-search 'products' && touch /tmp/reindex.ok",
    '30 2 * * 0 /srv/app/bin/report --weekly | mail -s "weekly report" team@example.com',
    '',
  ].join('\n'),
} as const;

export type MaintenanceScope = 'all' | 'web';
export interface MaintenanceState {
  enabled: boolean;
  scope: MaintenanceScope;
}
export const SEED_MAINTENANCE: MaintenanceState = { enabled: false, scope: 'all' };

/** What the services child process needs to know; written to services.json by `up`. */
export interface ServicesConfig {
  dir: string;
  ports: SandboxPorts;
  bypassToken: string;
  insyncDelayMs: number;
  maintenanceFile: string;
  readyFile: string;
  /** rds: the AWS side looks like an RDS → Aurora setup (private zone, one group per server). */
  platform?: 'self' | 'rds';
}
