// On loopback a security group cannot refuse connections, so the sandbox enforces old's groups
// the way AWS would: when no ingress rule of ANY group attached to old lets the app subnet reach
// the database port, NEW connections of the `app` account to old are refused (ACCOUNT LOCK) while
// open ones live on — exactly the trap a revoke leaves, which the drain step must then deal with.
// In the rds profile the same holds for replication: when no rule lets new (its groups, or its
// address) reach old, the `repl` account is locked on old, so the replica's running IO thread goes
// on but a reconnect (rds_start_replication in a rollback) is refused, as behind a real fence.
// Restoring a rule unlocks the account.
import mysql, { type Connection } from 'mysql2/promise';
import type { AwsState, SgRule } from './aws-state.js';
import {
  ACCOUNTS,
  APP_SUBNET_CIDR,
  DB_HOSTS,
  NEW_DB_NAME,
  OLD_DB_NAME,
  SECURITY_GROUP_ID,
  SECURITY_GROUP_PORT,
} from './config.js';
import { inCidr } from './demo-app.js';
import { rootConnection } from './mariadb.js';

/** Groups attached to old: its RDS instance's (rds profile), else the one old group. */
export function oldGroupIds(state: AwsState): string[] {
  const i = state.instances.find((x) => x.address === OLD_DB_NAME);
  return i ? i.securityGroupIds : [SECURITY_GROUP_ID];
}

/** Groups attached to new: those of every instance and cluster at new's address. */
export function newGroupIds(state: AwsState): string[] {
  const sets = [
    ...state.instances.filter((i) => i.address === NEW_DB_NAME),
    ...state.clusters.filter((c) => c.endpoint === NEW_DB_NAME),
  ].flatMap((x) => x.securityGroupIds);
  return [...new Set(sets)];
}

function ingressOnPort(state: AwsState, groupIds: string[]): SgRule[] {
  return state.groups
    .filter((g) => groupIds.includes(g.id))
    .flatMap((g) => g.rules)
    .filter(
      (r) =>
        !r.isEgress &&
        (r.ipProtocol === '-1' ||
          (r.ipProtocol === 'tcp' && r.fromPort <= SECURITY_GROUP_PORT && SECURITY_GROUP_PORT <= r.toPort)),
    );
}

/** The rule's CIDR covers the whole network `cidr` (contains its base and is no narrower). */
function covers(rule: SgRule, cidr: string): boolean {
  if (!rule.cidrIpv4) return false;
  const [base, bits] = cidr.split('/');
  const [, ruleBits] = rule.cidrIpv4.split('/');
  return Number(ruleBits) <= Number(bits ?? 32) && inCidr(base!, rule.cidrIpv4);
}

export function appSubnetAllowed(state: AwsState): boolean {
  return ingressOnPort(state, oldGroupIds(state)).some((r) => covers(r, APP_SUBNET_CIDR));
}

/** New can open a replication connection to old: a rule names one of new's groups, or new's address. */
export function replicationAllowed(state: AwsState): boolean {
  const fromNew = newGroupIds(state);
  return ingressOnPort(state, oldGroupIds(state)).some(
    (r) =>
      (r.referencedGroupId !== undefined && fromNew.includes(r.referencedGroupId)) ||
      covers(r, `${DB_HOSTS.new}/32`),
  );
}

interface Locks {
  app: boolean;
  /** undefined: this profile does not fence replication (self keeps its original model). */
  repl?: boolean;
}

export function wantedLocks(state: AwsState): Locks {
  return {
    app: !appSubnetAllowed(state),
    ...(state.platform === 'rds' ? { repl: !replicationAllowed(state) } : {}),
  };
}

/**
 * Keeps the account locks on old in line with the AWS state. `socket`: old's unix socket, to act as
 * root (the rds profile's tool account cannot SET sql_log_bin); without it, the tool account over TCP.
 */
export function startFence(
  getState: () => AwsState,
  dbPort: number,
  socket?: string,
): { sync(): Promise<void>; close(): Promise<void> } {
  const applied: { app?: boolean; repl?: boolean } = {};
  let conn: Connection | undefined;
  let running: Promise<void> | undefined;
  // One change at a time; a caller that needs the fence current (sync) waits for its own pass.
  const tick = (): Promise<void> => {
    const next = (running ?? Promise.resolve()).then(apply);
    running = next.finally(() => {
      if (running === next) running = undefined;
    });
    return next;
  };
  const lockAll = async (want: Locks) => {
    conn ??= await connect();
    // Not replicated: the fence belongs to old's network, not to the data.
    await conn.query('SET SESSION sql_log_bin = 0');
    for (const who of ['app', 'repl'] as const) {
      const lock = want[who];
      // A profile without a repl fence leaves repl unlocked (a reset from rds to self unlocks it).
      const target = lock ?? false;
      if (applied[who] === target) continue;
      await conn.query(`ALTER USER '${ACCOUNTS[who].user}'@'%' ACCOUNT ${target ? 'LOCK' : 'UNLOCK'}`);
      applied[who] = target;
    }
  };
  const apply = async () => {
    const want = wantedLocks(getState());
    if (applied.app === want.app && applied.repl === (want.repl ?? false)) return;
    try {
      await lockAll(want);
    } catch {
      await drop(); // old is down, restarting, or our session was killed: retry once at once
      await lockAll(want).catch(drop); // else next tick
    }
    // No session of ours stays on old between changes: AWS's fence is not a database client, and a
    // lingering one would be one more session for a drain to count and end.
    await drop();
  };
  const drop = async () => {
    const c = conn;
    conn = undefined;
    await c?.end().catch(() => {});
  };
  const connect = () =>
    socket
      ? rootConnection(socket)
      : mysql.createConnection({
          host: DB_HOSTS.old,
          port: dbPort,
          user: ACCOUNTS.tool.user,
          password: ACCOUNTS.tool.password,
        });
  const timer = setInterval(() => void tick(), 50);
  void tick();
  return {
    sync: () => tick(),
    async close() {
      clearInterval(timer);
      await conn?.end().catch(() => {});
    },
  };
}
