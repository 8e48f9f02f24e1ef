// Typed client for the sandbox admin routes (AWS endpoint /_sandbox/*, demo app /_admin/*), so
// tests and scripts inject faults and read counters through one set of functions.
import type { CallsReport, Fault, FaultSpec, stateSnapshot } from './aws-endpoint.js';
import type { MaintenanceState } from './config.js';

export type { CallsReport, Fault, FaultMode, FaultSpec } from './aws-endpoint.js';
export type AwsStateSnapshot = ReturnType<typeof stateSnapshot>;

/** The admin base URL (SANDBOX_ADMIN_URL), or an env record that has it. */
export type AdminTarget = string | { SANDBOX_ADMIN_URL?: string };
export type AppAdminTarget = string | { SANDBOX_APP_ADMIN_URL?: string };

function base(t: string | Record<string, string | undefined>, key: string): string {
  const url = typeof t === 'string' ? t : t[key];
  if (!url) throw new Error(`no ${key} given (is the sandbox up? source .sandbox/env)`);
  return url.replace(/\/+$/, '');
}

async function call<T>(url: string, method: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.trim()}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

const admin = (t: AdminTarget, path: string) => `${base(t as never, 'SANDBOX_ADMIN_URL')}${path}`;
const appAdmin = (t: AppAdminTarget, path: string) => `${base(t as never, 'SANDBOX_APP_ADMIN_URL')}${path}`;

/** Makes calls to `action` ("ec2:RevokeSecurityGroupIngress", "route53:*", "*") fail: deny → access denied, fail → HTTP 500, throttle, or delay. */
export function injectFault(t: AdminTarget, fault: FaultSpec): Promise<Fault> {
  return call<Fault>(admin(t, '/faults'), 'POST', fault);
}

export async function listFaults(t: AdminTarget): Promise<Fault[]> {
  return (await call<{ faults: Fault[] }>(admin(t, '/faults'), 'GET')).faults;
}

export async function clearFaults(t: AdminTarget): Promise<void> {
  await call(admin(t, '/faults'), 'DELETE');
}

/** Calls received since the last reset, by `service:Action`, and which actions mutate. */
export function calls(t: AdminTarget): Promise<CallsReport> {
  return call<CallsReport>(admin(t, '/calls'), 'GET');
}

export async function resetCalls(t: AdminTarget): Promise<void> {
  await call(admin(t, '/calls'), 'DELETE');
}

/** How long a Route 53 change stays PENDING before INSYNC (and before the DNS server serves it). */
export async function setInsyncDelay(t: AdminTarget, ms: number): Promise<void> {
  await call(admin(t, '/insync-delay'), 'POST', { ms });
}

export async function getInsyncDelay(t: AdminTarget): Promise<number> {
  return (await call<{ ms: number }>(admin(t, '/insync-delay'), 'GET')).ms;
}

/** Seed AWS state again; also clears faults and counters and restores the default INSYNC delay. */
export async function resetAws(t: AdminTarget): Promise<void> {
  await call(admin(t, '/reset'), 'POST');
}

export function awsState(t: AdminTarget): Promise<AwsStateSnapshot> {
  return call<AwsStateSnapshot>(admin(t, '/state'), 'GET');
}

export function setMaintenance(t: AppAdminTarget, state: MaintenanceState): Promise<MaintenanceState> {
  return call<MaintenanceState>(appAdmin(t, '/maintenance'), 'POST', state);
}

export function getMaintenance(t: AppAdminTarget): Promise<MaintenanceState> {
  return call<MaintenanceState>(appAdmin(t, '/maintenance'), 'GET');
}

/** Drops the demo app's cached DNS answer and its database pools. */
export async function resetApp(t: AppAdminTarget): Promise<void> {
  await call(appAdmin(t, '/reset'), 'POST');
}
