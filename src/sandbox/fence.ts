// On loopback a security group cannot refuse connections, so the sandbox enforces the old
// database's group the way AWS does for the application: when no ingress rule of the group lets
// the app subnet reach the database port any more, NEW connections of the `app` account to old
// are refused (ACCOUNT LOCK) while open ones live on — exactly the trap a revoke leaves, which the
// drain step must then deal with. Restoring the rule unlocks it.
import mysql, { type Connection } from 'mysql2/promise';
import type { AwsState } from './aws-state.js';
import { ACCOUNTS, APP_SUBNET_CIDR, DB_HOSTS, SECURITY_GROUP_ID, SECURITY_GROUP_PORT } from './config.js';
import { inCidr } from './demo-app.js';

export function appSubnetAllowed(state: AwsState): boolean {
  const group = state.groups.find((g) => g.id === SECURITY_GROUP_ID);
  if (!group) return false;
  const [subnet, bits] = APP_SUBNET_CIDR.split('/');
  return group.rules.some((r) => {
    if (r.isEgress || !r.cidrIpv4) return false;
    const protoOk = r.ipProtocol === '-1' || r.ipProtocol === 'tcp';
    const portOk =
      r.ipProtocol === '-1' || (r.fromPort <= SECURITY_GROUP_PORT && SECURITY_GROUP_PORT <= r.toPort);
    const [, ruleBits] = r.cidrIpv4.split('/');
    // The rule covers the whole subnet: its network contains the subnet's base and is no narrower.
    return protoOk && portOk && Number(ruleBits) <= Number(bits) && inCidr(subnet!, r.cidrIpv4);
  });
}

export function startFence(
  getState: () => AwsState,
  dbPort: number,
): { sync(): Promise<void>; close(): Promise<void> } {
  let applied: boolean | undefined;
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
  const apply = async () => {
    const allowed = appSubnetAllowed(getState());
    if (allowed === applied) return;
    try {
      conn ??= await connect();
      // Not replicated: the fence belongs to old's network, not to the data.
      await conn.query('SET SESSION sql_log_bin = 0');
      await conn.query(`ALTER USER '${ACCOUNTS.app.user}'@'%' ACCOUNT ${allowed ? 'UNLOCK' : 'LOCK'}`);
      applied = allowed;
    } catch {
      await conn?.end().catch(() => {});
      conn = undefined; // old is down, restarting, or our session was killed: retry once at once
      try {
        conn = await connect();
        await conn.query('SET SESSION sql_log_bin = 0');
        await conn.query(`ALTER USER '${ACCOUNTS.app.user}'@'%' ACCOUNT ${allowed ? 'UNLOCK' : 'LOCK'}`);
        applied = allowed;
      } catch {
        await conn?.end().catch(() => {});
        conn = undefined; // next tick
      }
    }
  };
  const connect = () =>
    mysql.createConnection({
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
