// The two MariaDB servers: finding (or installing) the binaries, a cached data-directory template
// so `up` only copies files instead of bootstrapping, detached server processes, and the seed
// (accounts, demo schema, GTID replication old → new) that both `up` and resetSandbox apply.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { cp } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import mysql from 'mysql2/promise';
import { sleep } from '../util/sleep.js';
import { ACCOUNTS, DB_HOSTS, DB_NAME, type DbLayout, type DbRole, SERVER_IDS } from './config.js';
import { SandboxError } from './errors.js';
import { type DetachedChild, isAlive, spawnDetached } from './processes.js';
import { DEFAULT_PROFILE, type DbProfile, profileServerArgs, rdsPlatformSql } from './rds-platform.js';

const run = promisify(execFile);

export interface MariadbBinaries {
  server: string;
  installDb: string;
  /** e.g. 10.11.19-MariaDB-0+deb12u1 */
  version: string;
}

const SERVER_NAMES = ['mariadbd', 'mysqld'];
const INSTALL_NAMES = ['mariadb-install-db', 'mysql_install_db'];
const EXTRA_DIRS = [
  '/usr/sbin',
  '/usr/local/sbin',
  '/usr/bin',
  '/usr/local/bin',
  '/usr/libexec',
  '/usr/local/mysql/bin',
  '/usr/local/mysql/scripts',
];
export const APT_INSTALL_COMMAND = 'sudo apt-get install -y mariadb-server';

export interface MariadbLookup {
  /** Where to look for binaries (default: PATH and the usual sbin/libexec directories). */
  searchDirs?: string[];
  /** Default: whether this process runs as root. */
  isRoot?: boolean;
  /** Default: /usr/sbin/policy-rc.d. */
  policyRcPath?: string;
}

function findExecutable(names: string[], dirs: string[]): string | undefined {
  for (const name of names) {
    for (const d of dirs) {
      const p = join(d, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // keep looking
      }
    }
  }
  return undefined;
}

async function probe(dirs: string[], override: string | undefined): Promise<MariadbBinaries | undefined> {
  const server = override ?? findExecutable(SERVER_NAMES, dirs);
  const installDb = findExecutable(INSTALL_NAMES, dirs);
  if (!server || !installDb) return undefined;
  let stdout: string;
  try {
    ({ stdout } = await run(server, ['--version']));
  } catch (e) {
    throw new SandboxError(
      'MARIADB_BROKEN',
      `${server} --version failed (${firstLine(e)}); reinstall it: ${APT_INSTALL_COMMAND}`,
      { cause: e },
    );
  }
  if (!/mariadb/i.test(stdout)) {
    throw new SandboxError(
      'MARIADB_REQUIRED',
      `${server} is not MariaDB (${stdout.trim()}); the sandbox needs MariaDB's GTID replication: ${APT_INSTALL_COMMAND}`,
    );
  }
  const version = /Ver\s+(\S+)/.exec(stdout)?.[1] ?? 'unknown';
  return { server, installDb, version };
}

/**
 * Finds mariadbd; when it is missing and we are root on a Debian-like system, installs Debian's
 * mariadb-server (saying so), otherwise fails with the exact command to run.
 */
export async function ensureMariadb(
  log: (line: string) => void,
  o: MariadbLookup = {},
): Promise<MariadbBinaries> {
  const dirs = o.searchDirs ?? [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  const override = o.searchDirs ? undefined : process.env.CUTOVER_MARIADBD;
  const found = await probe(dirs, override);
  if (found) return found;
  const aptGet = findExecutable(['apt-get'], dirs);
  if (!(o.isRoot ?? process.getuid?.() === 0) || !aptGet) {
    throw new SandboxError(
      'MARIADB_MISSING',
      `no MariaDB server binary (mariadbd) found; install it with: ${APT_INSTALL_COMMAND}`,
    );
  }
  log("no MariaDB server binary found: installing Debian's mariadb-server with apt-get (about a minute)");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // The package would start a system-wide MariaDB on 3306; policy-rc.d keeps it from doing so.
  const policy = o.policyRcPath ?? '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  try {
    if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    await run(aptGet, ['update', '-qq'], { env, maxBuffer: 64 << 20 });
    await run(aptGet, ['install', '-y', '-qq', '--no-install-recommends', 'mariadb-server'], {
      env,
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    throw new SandboxError(
      'MARIADB_INSTALL_FAILED',
      `apt-get could not install mariadb-server (${firstLine(e)}); install it by hand: ${APT_INSTALL_COMMAND}`,
      { cause: e },
    );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const installed = await probe(dirs, override);
  if (!installed) {
    throw new SandboxError(
      'MARIADB_MISSING',
      `mariadb-server was installed but mariadbd is still not found; check: ${APT_INSTALL_COMMAND}`,
    );
  }
  log(`installed ${installed.server} (${installed.version})`);
  return installed;
}

function firstLine(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr?.trim() || err.message || String(e)).split('\n')[0] ?? '';
}

const isRoot = () => process.getuid?.() === 0;

// Small InnoDB files: the template is copied twice per `up`, and the sandbox holds a few rows.
const INNODB_ARGS = ['--innodb-buffer-pool-size=32M', '--innodb-log-file-size=8M'];

function cacheRoot(): string {
  const base =
    process.env.CUTOVER_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cutover');
  try {
    mkdirSync(base, { recursive: true });
    accessSync(base, constants.W_OK);
    return base;
  } catch {
    const fallback = join(tmpdir(), `cutover-cache-${process.getuid?.() ?? 'user'}`);
    mkdirSync(fallback, { recursive: true });
    return fallback;
  }
}

/**
 * A freshly installed data directory, built once per server version and copied for each server:
 * mariadb-install-db costs about a second, a copy a few milliseconds.
 */
export async function ensureTemplate(bins: MariadbBinaries, log: (line: string) => void): Promise<string> {
  const installArgs = [
    '--no-defaults',
    ...(isRoot() ? ['--user=root'] : []),
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--skip-name-resolve',
    ...INNODB_ARGS,
  ];
  const key = createHash('sha256')
    .update(`${bins.server}\0${installArgs.join('\0')}`)
    .digest('hex')
    .slice(0, 10);
  const dir = join(cacheRoot(), `mariadb-${bins.version.replace(/[^A-Za-z0-9._-]/g, '_')}-${key}`);
  const data = join(dir, 'data');
  if (existsSync(join(dir, '.complete'))) return data;
  log(`preparing a MariaDB ${bins.version} data directory template in ${dir} (once per version)`);
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  mkdirSync(tmp, { recursive: true });
  try {
    // --no-defaults must come first for mariadb-install-db as for mariadbd.
    const [first, ...rest] = installArgs;
    await run(bins.installDb, [first!, `--datadir=${join(tmp, 'data')}`, ...rest], {
      maxBuffer: 16 << 20,
      timeout: 180_000,
    });
    writeFileSync(join(tmp, '.complete'), `${bins.version}\n`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another sandbox built the same template meanwhile: theirs is as good as ours.
      if (!existsSync(join(dir, '.complete'))) throw e;
    }
  } catch (e) {
    throw new SandboxError('MARIADB_TEMPLATE_FAILED', `${bins.installDb} failed: ${firstLine(e)}`, {
      cause: e,
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return data;
}

export function serverArgs(db: DbLayout, port: number, profile: DbProfile = DEFAULT_PROFILE): string[] {
  return [
    '--no-defaults',
    ...(isRoot() ? ['--user=root'] : []),
    `--datadir=${db.datadir}`,
    `--socket=${db.socket}`,
    `--pid-file=${db.pidFile}`,
    `--log-error=${db.errorLog}`,
    `--bind-address=${DB_HOSTS[db.role]}`,
    `--port=${port}`,
    `--server-id=${SERVER_IDS[db.role]}`,
    `--report-host=${DB_HOSTS[db.role]}`,
    `--report-port=${port}`,
    '--log-bin=mysql-bin',
    '--relay-log=relay-bin',
    '--binlog-format=ROW',
    ...profileServerArgs(profile),
    '--log-slave-updates=1',
    '--slave-net-timeout=10',
    '--skip-name-resolve',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
    '--max-connections=300',
    ...INNODB_ARGS,
    ...(seedReadOnly(db.role, profile) ? ['--read-only=1'] : []),
  ];
}

/** The self-managed replica starts read_only; an Aurora writer replicating from RDS is writable. */
function seedReadOnly(role: DbRole, profile: DbProfile): boolean {
  return role === 'new' && profile.platform === 'self';
}

/** Copies the template into the server's datadir and starts mariadbd detached. */
export async function startServer(
  bins: MariadbBinaries,
  template: string,
  db: DbLayout,
  port: number,
  profile: DbProfile = DEFAULT_PROFILE,
): Promise<DetachedChild> {
  mkdirSync(db.root, { recursive: true });
  mkdirSync(join(db.socket, '..'), { recursive: true });
  await cp(template, db.datadir, { recursive: true });
  if (existsSync(db.socket)) unlinkSync(db.socket);
  return spawnDetached(bins.server, serverArgs(db, port, profile), { logFile: db.errorLog });
}

export function rootConnection(socket: string, connectTimeout = 2000): Promise<Connection> {
  return mysql.createConnection({
    socketPath: socket,
    user: 'root',
    password: '',
    connectTimeout,
    multipleStatements: true,
  });
}

export async function waitServerReady(
  db: DbLayout,
  pid: number,
  port: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) {
      const hint = errorLogHint(db);
      // Another process took the port between our check and the bind.
      if (/Address already in use|Bind on TCP\/IP port/.test(readLog(db))) {
        throw new SandboxError(
          'PORT_IN_USE',
          `tcp/${port} on ${DB_HOSTS[db.role]} (MariaDB ${db.role}) is already in use by another process`,
          { badInput: true },
        );
      }
      throw new SandboxError(
        'MARIADB_START_FAILED',
        `MariaDB ${db.role} (pid ${pid}) exited during startup: ${hint}`,
      );
    }
    if (existsSync(db.socket)) {
      try {
        const c = await rootConnection(db.socket, 1000);
        await c.end();
        return;
      } catch {
        // still starting
      }
    }
    if (Date.now() > deadline) {
      throw new SandboxError(
        'MARIADB_START_TIMEOUT',
        `MariaDB ${db.role} did not accept connections within ${timeoutMs / 1000}s: ${errorLogHint(db)}`,
      );
    }
    await sleep(25);
  }
}

function readLog(db: DbLayout): string {
  try {
    return readFileSync(db.errorLog, 'utf8');
  } catch {
    return '';
  }
}

function errorLogHint(db: DbLayout): string {
  try {
    const lines = readFileSync(db.errorLog, 'utf8').split('\n');
    const err = lines.filter((l) => /\[ERROR\]/.test(l)).at(-1) ?? lines.filter(Boolean).at(-1);
    return `${err?.trim() ?? 'no log output'} (log: ${db.errorLog})`;
  } catch {
    return `see ${db.errorLog}`;
  }
}

const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);
const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

const SCHEMA_SQL = `
CREATE DATABASE \`${DB_NAME}\` CHARACTER SET utf8mb4;
CREATE TABLE \`${DB_NAME}\`.products (
  id INT AUTO_INCREMENT PRIMARY KEY,
  sku VARCHAR(32) NOT NULL UNIQUE,
  name VARCHAR(200) NOT NULL,
  price_cents INT NOT NULL,
  stock INT NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE TABLE \`${DB_NAME}\`.customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(200) NOT NULL UNIQUE,
  name VARCHAR(200) NOT NULL,
  created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE \`${DB_NAME}\`.orders (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total_cents INT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY (customer_id),
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE \`${DB_NAME}\`.order_items (
  order_id BIGINT NOT NULL,
  product_id INT NOT NULL,
  quantity INT NOT NULL,
  price_cents INT NOT NULL,
  PRIMARY KEY (order_id, product_id),
  CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES orders (id),
  CONSTRAINT items_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE=InnoDB;
INSERT INTO \`${DB_NAME}\`.products (sku, name, price_cents, stock) VALUES
  ('MUG-001', 'Enamel mug', 1200, 40),
  ('TEE-002', 'Organic T-shirt', 2500, 25),
  ('BAG-003', 'Canvas tote bag', 1800, 60),
  ('CAP-004', 'Baseball cap', 2000, 15),
  ('SOCK-005', 'Wool socks (pair)', 900, 120),
  ('LAMP-006', 'Desk lamp', 4500, 8);
INSERT INTO \`${DB_NAME}\`.customers (email, name, created_at) VALUES
  ('alice@example.com', 'Alice Martin', '2024-01-05 09:12:00'),
  ('bob@example.com', 'Bob Durand', '2024-02-11 14:30:00'),
  ('chloe@example.com', 'Chloé Bernard', '2024-03-20 18:45:00');
INSERT INTO \`${DB_NAME}\`.orders (customer_id, status, total_cents, created_at) VALUES
  (1, 'shipped', 3700, '2024-04-01 10:00:00'),
  (2, 'paid', 2500, '2024-04-02 11:30:00'),
  (3, 'new', 5400, '2024-04-03 16:20:00');
INSERT INTO \`${DB_NAME}\`.order_items (order_id, product_id, quantity, price_cents) VALUES
  (1, 1, 1, 1200), (1, 2, 1, 2500),
  (2, 2, 1, 2500),
  (3, 5, 1, 900), (3, 6, 1, 4500);
`;

function accountsSql(): string {
  const { tool, app, repl } = ACCOUNTS;
  return `
DROP USER IF EXISTS ${q(tool.user)}@'%', ${q(app.user)}@'%', ${q(repl.user)}@'%';
CREATE USER ${q(tool.user)}@'%' IDENTIFIED BY ${q(tool.password)};
GRANT ALL PRIVILEGES ON *.* TO ${q(tool.user)}@'%' WITH GRANT OPTION;
CREATE USER ${q(app.user)}@'%' IDENTIFIED BY ${q(app.password)};
GRANT SELECT, INSERT, UPDATE, DELETE ON \`${DB_NAME}\`.* TO ${q(app.user)}@'%';
CREATE USER ${q(repl.user)}@'%' IDENTIFIED BY ${q(repl.password)};
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${q(repl.user)}@'%';
`;
}

async function rows<T = Record<string, unknown>>(c: Connection, sql: string): Promise<T[]> {
  const [r] = await c.query<RowDataPacket[]>(sql);
  return r as unknown as T[];
}

/** Runs sql; if it waits on a lock (a test's open transaction, LOCK TABLES), ends the other client sessions and retries once. */
async function execPastBlockers(c: Connection, sql: string): Promise<void> {
  try {
    await c.query(sql);
  } catch (e) {
    if ((e as { errno?: number }).errno !== 1205) throw e;
    const own = (await rows<{ id: number }>(c, 'SELECT CONNECTION_ID() AS id'))[0]!.id;
    const others = await rows<{ ID: number }>(
      c,
      `SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> ${own} AND USER NOT IN ('system user', 'event_scheduler') AND COMMAND NOT IN ('Binlog Dump', 'Daemon')`,
    );
    for (const o of others) await c.query(`KILL ${Number(o.ID)}`).catch(() => undefined);
    await c.query(sql);
  }
}

async function stopAllReplication(c: Connection): Promise<void> {
  const conns = await rows<{ Connection_name: string }>(c, 'SHOW ALL SLAVES STATUS');
  for (const { Connection_name: name } of conns) {
    const n = name ? ` ${q(name)}` : '';
    await c.query(`STOP SLAVE${n}`);
    await c.query(`RESET SLAVE${n} ALL`);
  }
}

/** Drops every non-system schema and the sandbox accounts, then recreates the seed, outside the binlog. */
async function reseed(c: Connection, role: DbRole, profile: DbProfile): Promise<void> {
  await c.query('SET SESSION sql_log_bin = 0, SESSION lock_wait_timeout = 5');
  // No heartbeat or rotation while the seed is rewritten (rds profile; a no-op elsewhere).
  await c.query('SET GLOBAL event_scheduler = OFF');
  const schemas = await rows<{ name: string }>(
    c,
    'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA',
  );
  for (const { name } of schemas) {
    if (!SYSTEM_SCHEMAS.has(name.toLowerCase()))
      await execPastBlockers(c, `DROP DATABASE \`${name.replace(/`/g, '``')}\``);
  }
  if (profile.platform === 'rds') {
    for (const sql of rdsPlatformSql(profile.heartbeatSeconds)) await c.query(sql);
  } else await c.query(accountsSql());
  await c.query(SCHEMA_SQL);
  await c.query('FLUSH PRIVILEGES');
  await execPastBlockers(c, `SET GLOBAL read_only = ${seedReadOnly(role, profile) ? 1 : 0}`);
  // Forget all GTID history: after a cutover the new server has transactions the old one never saw.
  await c.query('RESET MASTER');
  await c.query("SET GLOBAL gtid_slave_pos = ''");
}

export interface ReplicationState {
  io: string;
  sql: string;
  lastIoError: string;
  lastSqlError: string;
}

export async function replicaState(c: Connection): Promise<ReplicationState | undefined> {
  const r = (await rows<Record<string, unknown>>(c, 'SHOW SLAVE STATUS'))[0];
  if (!r) return undefined;
  return {
    io: String(r.Slave_IO_Running ?? ''),
    sql: String(r.Slave_SQL_Running ?? ''),
    lastIoError: String(r.Last_IO_Error ?? ''),
    lastSqlError: String(r.Last_SQL_Error ?? ''),
  };
}

/**
 * Puts both servers into the seed state: old writable and replication-free, new read_only and
 * replicating from old by GTID, both with the same accounts and demo data. Used by `up` (on fresh
 * servers) and by resetSandbox (after a run flipped, fenced or diverged them).
 */
export async function seedDatabases(
  sockets: Record<DbRole, string>,
  port: number,
  profile: DbProfile = DEFAULT_PROFILE,
): Promise<void> {
  const conns = await Promise.all([rootConnection(sockets.old), rootConnection(sockets.new)]);
  const [oldC, newC] = conns as [Connection, Connection];
  try {
    await Promise.all([stopAllReplication(oldC), stopAllReplication(newC)]);
    await Promise.all([reseed(oldC, 'old', profile), reseed(newC, 'new', profile)]);
    const { repl } = ACCOUNTS;
    // GTID off: the replica follows the source's binlog file and position, as on many RDS instances.
    const from =
      profile.gtid === 'on'
        ? 'MASTER_USE_GTID=slave_pos'
        : await rows<{ File: string; Position: number }>(oldC, 'SHOW MASTER STATUS').then(
            ([m]) =>
              `MASTER_USE_GTID=no, MASTER_LOG_FILE=${q(m!.File)}, MASTER_LOG_POS=${Number(m!.Position)}`,
          );
    await newC.query(
      `CHANGE MASTER TO MASTER_HOST=${q(DB_HOSTS.old)}, MASTER_PORT=${port}, MASTER_USER=${q(repl.user)}, MASTER_PASSWORD=${q(repl.password)}, ${from}, MASTER_CONNECT_RETRY=1`,
    );
    await newC.query('START SLAVE');
    const deadline = Date.now() + 15_000;
    for (;;) {
      const s = await replicaState(newC);
      if (s?.io === 'Yes' && s.sql === 'Yes') break;
      if (Date.now() > deadline) {
        throw new SandboxError(
          'REPLICATION_NOT_RUNNING',
          `replication old → new did not start (IO ${s?.io}, SQL ${s?.sql}${s?.lastIoError ? `: ${s.lastIoError}` : ''}${s?.lastSqlError ? `: ${s.lastSqlError}` : ''})`,
        );
      }
      await sleep(25);
    }
    if (profile.platform === 'rds')
      await Promise.all([oldC, newC].map((c) => c.query('SET GLOBAL event_scheduler = ON')));
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  }
}
