// The `.sandbox/env` contract (DESIGN.md): shell-sourceable KEY=value lines that runbooks, scripts
// and tests read. Values are single-quoted whenever the shell could otherwise reinterpret them.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseEnvFile } from '../runbook/env-file.js';

/** The env file as a record: the DESIGN.md contract keys, the sandbox's own, and any other line. */
export interface SandboxEnv {
  // DESIGN.md contract
  CUTOVER_AWS_ENDPOINT: string;
  SANDBOX_OLD_DB_HOST: string;
  SANDBOX_NEW_DB_HOST: string;
  SANDBOX_DB_PORT: string;
  SANDBOX_DB_USER: string;
  SANDBOX_DB_PASSWORD: string;
  SANDBOX_APP_DB_USER: string;
  SANDBOX_APP_DB_PASSWORD: string;
  SANDBOX_DB_NAME: string;
  SANDBOX_DNS_PORT: string;
  SANDBOX_ZONE_ID: string;
  SANDBOX_RECORD_NAME: string;
  SANDBOX_SECURITY_GROUP_ID: string;
  SANDBOX_APP_URL: string;
  /** MySQL through HAProxy (issue 16 contract): sends to old in the seed state. */
  SANDBOX_PROXY_HOST: string;
  SANDBOX_PROXY_PORT: string;
  SANDBOX_APP_MOBILE_URL: string;
  // the sandbox's own
  SANDBOX_DIR: string;
  AWS_REGION: string;
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  SANDBOX_ADMIN_URL: string;
  SANDBOX_DB_OLD_NAME: string;
  SANDBOX_DB_NEW_NAME: string;
  SANDBOX_DB_REPL_USER: string;
  SANDBOX_DB_REPL_PASSWORD: string;
  SANDBOX_OLD_DB_SOCKET: string;
  SANDBOX_NEW_DB_SOCKET: string;
  SANDBOX_DNS_SERVER: string;
  SANDBOX_ZONE_NAME: string;
  SANDBOX_NEW_SECURITY_GROUP_ID: string;
  SANDBOX_RDS_CLUSTER_ID: string;
  SANDBOX_RDS_INSTANCE_ID: string;
  SANDBOX_APP_ADMIN_URL: string;
  SANDBOX_APP_HEALTH_URL: string;
  SANDBOX_APP_BYPASS_HEADER: string;
  SANDBOX_APP_BYPASS_TOKEN: string;
  SANDBOX_APP_BYPASS_CIDR: string;
  SANDBOX_APP_BYPASS_LOCAL_ADDRESS: string;
  SANDBOX_MAINTENANCE_FILE: string;
  SANDBOX_APP_CTL: string;
  SANDBOX_CRONTAB_APP1: string;
  SANDBOX_CRONTAB_APP2: string;
  SANDBOX_PROXY_SOCKET: string;
  SANDBOX_PROXY_HOLD_SOCKET: string;
  SANDBOX_PROXY_BACKEND: string;
  SANDBOX_PROXY_OLD_SERVER: string;
  SANDBOX_PROXY_NEW_SERVER: string;
  [key: string]: string;
}

const SAFE = /^[A-Za-z0-9_./:@%+,=-]*$/;

export function quoteEnvValue(value: string): string {
  if (value !== '' && SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function formatEnvFile(env: Record<string, string>, header: string[] = []): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [k, v] of Object.entries(env)) lines.push(`${k}=${quoteEnvValue(v)}`);
  return `${lines.join('\n')}\n`;
}

export function writeEnvFile(path: string, env: Record<string, string>, header: string[] = []): void {
  // Readers poll for this file; a rename makes it appear complete or not at all.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, formatEnvFile(env, header), { mode: 0o600 });
  renameSync(tmp, path);
}

export function readEnvFileAt(path: string): SandboxEnv {
  return parseEnvFile(readFileSync(path, 'utf8')) as SandboxEnv;
}
