// A JSON-comparable picture of everything a runbook can change in the sandbox, for "state before ==
// state after" assertions around failed and rolled-back runs. It leaves out what moves on its own
// (rule ids, positions, lag, thread ids) so two captures with nothing changed in between are equal.
import { Resolver } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { awsState } from './admin-client.js';
import type { SgRule } from './aws-state.js';
import type { SandboxEnv } from './env-file.js';
import { haproxy } from '../steps/proxy/haproxy.js';
import { dbRouteFile } from './app-ctl.js';
import { readDbRoute, readMaintenance } from './maintenance.js';
import { rootConnection } from './mariadb.js';

/** A rule as the endpoint holds it, without what changes when it is re-created (id) or is fixed here. */
export type RuleProps = Omit<SgRule, 'id' | 'groupId' | 'isEgress'>;

export interface RecordProps {
  name: string;
  type: string;
  ttl: number | null;
  values: string[];
  setIdentifier?: string;
}

export interface ReplicationProps {
  connection: string;
  sourceHost: string;
  sourcePort: number;
  /** Slave_IO_Running as the server says it: "Connecting" is not running (it has not reached the source). */
  ioState: string;
  sqlRunning: boolean;
  usingGtid: string;
  lastIoErrno: number;
  lastSqlErrno: number;
}

export interface ServerProps {
  readOnly: boolean;
  /** MySQL's super_read_only; MariaDB has no such variable (null). */
  superReadOnly: boolean | null;
  replication: ReplicationProps[];
  /** Accounts that cannot log in (ACCOUNT LOCK: the sandbox's fence, a freeze by account lock). */
  lockedAccounts: string[];
  /** Enabled scheduled events and whether the scheduler runs them (the rdsadmin heartbeat). */
  events: string[];
  eventScheduler: boolean;
}

export interface SandboxState {
  securityGroups: Record<string, RuleProps[]>;
  records: Record<string, RecordProps[]>;
  /** What the sandbox DNS server answers for the database name (what clients resolve). */
  dnsAnswer: string[];
  servers: { old: ServerProps; new: ServerProps };
  maintenance: { enabled: boolean; scope?: string };
  crontabs: { app1: string | null; app2: string | null };
  /** HAProxy in front of the pair: each server's admin state and weight, whether new connections are held. */
  proxy: { servers: { name: string; state: string; weight: number }[]; held: boolean } | null;
  /** How the demo app reaches MySQL (app-ctl db dns|proxy). */
  appDbRoute: string;
}

const byJson = <T>(a: T, b: T) =>
  JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0;

function ruleProps(r: RuleProps): RuleProps {
  const out: RuleProps = { ipProtocol: r.ipProtocol, fromPort: r.fromPort, toPort: r.toPort };
  if (r.cidrIpv4 !== undefined) out.cidrIpv4 = r.cidrIpv4;
  if (r.cidrIpv6 !== undefined) out.cidrIpv6 = r.cidrIpv6;
  if (r.referencedGroupId !== undefined) out.referencedGroupId = r.referencedGroupId;
  if (r.description !== undefined) out.description = r.description;
  return out;
}

async function serverProps(socket: string): Promise<ServerProps> {
  let c: Connection | undefined;
  try {
    c = await rootConnection(socket);
    const [vars] = await c.query<RowDataPacket[]>(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'super_read_only')",
    );
    const v = Object.fromEntries(vars.map((r) => [String(r.Variable_name), String(r.Value)]));
    const on = (x: string | undefined) => (x === undefined ? null : x === 'ON' || x === '1');
    const [slaves] = await c.query<RowDataPacket[]>('SHOW ALL SLAVES STATUS');
    const replication = slaves
      .map(
        (s): ReplicationProps => ({
          connection: String(s.Connection_name ?? ''),
          sourceHost: String(s.Master_Host ?? ''),
          sourcePort: Number(s.Master_Port ?? 0),
          ioState: String(s.Slave_IO_Running),
          sqlRunning: String(s.Slave_SQL_Running) === 'Yes',
          usingGtid: String(s.Using_Gtid ?? ''),
          lastIoErrno: Number(s.Last_IO_Errno ?? 0),
          lastSqlErrno: Number(s.Last_SQL_Errno ?? 0),
        }),
      )
      .sort((a, b) => a.connection.localeCompare(b.connection));
    const [locked] = await c.query<RowDataPacket[]>(
      "SELECT CONCAT(User, '@', Host) AS a FROM mysql.global_priv WHERE JSON_EXTRACT(Priv, '$.account_locked') = true AND User <> 'mariadb.sys' ORDER BY 1",
    );
    const [events] = await c.query<RowDataPacket[]>(
      "SELECT CONCAT(EVENT_SCHEMA, '.', EVENT_NAME) AS e FROM information_schema.EVENTS WHERE STATUS = 'ENABLED' ORDER BY 1",
    );
    const [[sched]] = (await c.query<RowDataPacket[]>('SELECT @@GLOBAL.event_scheduler AS s')) as unknown as [
      [{ s: string }],
    ];
    return {
      readOnly: on(v.read_only) ?? false,
      superReadOnly: on(v.super_read_only),
      replication,
      lockedAccounts: locked.map((r) => String(r.a)),
      events: events.map((r) => String(r.e)),
      eventScheduler: sched.s === 'ON' || sched.s === '1',
    };
  } finally {
    await c?.end().catch(() => undefined);
  }
}

function fileOrNull(path: string | undefined): string | null {
  return path && existsSync(path) ? readFileSync(path, 'utf8') : null;
}

async function dnsAnswer(env: SandboxEnv): Promise<string[]> {
  const r = new Resolver({ timeout: 1000, tries: 2 });
  r.setServers([env.SANDBOX_DNS_SERVER]);
  try {
    return (await r.resolveCname(env.SANDBOX_RECORD_NAME)).sort();
  } catch (e) {
    return [`error: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`];
  }
}

export async function captureSandboxState(env: SandboxEnv): Promise<SandboxState> {
  // Through the admin route, not the SDK: capturing must not show up in the call counters.
  const [aws, oldServer, newServer, answer, proxy] = await Promise.all([
    awsState(env),
    serverProps(env.SANDBOX_OLD_DB_SOCKET),
    serverProps(env.SANDBOX_NEW_DB_SOCKET),
    dnsAnswer(env),
    proxyProps(env),
  ]);
  const securityGroups = Object.fromEntries(
    [...aws.securityGroups]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((g) => [
        g.id,
        g.rules
          .filter((r) => !r.isEgress)
          .map(ruleProps)
          .sort(byJson),
      ]),
  );
  const records = Object.fromEntries(
    [...aws.hostedZones]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((z) => [
        z.id,
        z.records
          .map(
            (r): RecordProps => ({
              name: r.name,
              type: r.type,
              ttl: r.ttl ?? null,
              values: [...r.values].sort(),
              ...(r.setIdentifier !== undefined ? { setIdentifier: r.setIdentifier } : {}),
            }),
          )
          .sort(byJson),
      ]),
  );
  const m = readMaintenance(env.SANDBOX_MAINTENANCE_FILE);
  return {
    securityGroups,
    records,
    dnsAnswer: answer,
    servers: { old: oldServer, new: newServer },
    // The scope of a maintenance that is off changes nothing for anyone.
    maintenance: m.enabled ? { enabled: true, scope: m.scope } : { enabled: false },
    crontabs: { app1: fileOrNull(env.SANDBOX_CRONTAB_APP1), app2: fileOrNull(env.SANDBOX_CRONTAB_APP2) },
    proxy,
    appDbRoute: readDbRoute(dbRouteFile(env.SANDBOX_DIR)),
  };
}

async function proxyProps(env: SandboxEnv): Promise<SandboxState['proxy']> {
  if (!env.SANDBOX_PROXY_SOCKET) return null;
  const p = haproxy(env.SANDBOX_PROXY_SOCKET);
  const [servers, held] = await Promise.all([p.servers(env.SANDBOX_PROXY_BACKEND), p.holding()]);
  return {
    servers: servers.map((x) => ({ name: x.name, state: x.state, weight: x.weight })),
    held,
  };
}
