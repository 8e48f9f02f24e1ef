// What `sandbox up` writes so the production template (runbooks/rds-to-aurora.yaml) runs against the
// sandbox unmodified: the parameters (`--var-file .sandbox/rds-to-aurora.vars`), the secrets it takes
// from the environment (an env file the template names through its secretsFile parameter, mode 0600),
// and the maintenance script the template calls with `on` / `off`.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RDS_OLD_INSTANCE_ID } from './aws-state.js';
import { ADMIN_CIDR, NEW_SECURITY_GROUP_ID, RDS_CLUSTER_ID } from './config.js';
import { type SandboxEnv, writeEnvFile } from './env-file.js';

export interface RehearsalFiles {
  vars: string;
  secrets: string;
  maintenanceScript: string;
}

export function rehearsalFilePaths(dir: string): RehearsalFiles {
  return {
    vars: join(dir, 'rds-to-aurora.vars'),
    secrets: join(dir, 'rds-to-aurora.env'),
    maintenanceScript: join(dir, 'bin', 'maintenance'),
  };
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The template's parameters, by name, as the sandbox fills them. */
export function templateVars(env: SandboxEnv, files: RehearsalFiles): Record<string, string> {
  return {
    region: env.AWS_REGION,
    secretsFile: files.secrets,
    zoneId: env.SANDBOX_ZONE_ID,
    record: env.SANDBOX_RECORD_NAME,
    recordTtl: env.SANDBOX_RECORD_TTL ?? '1',
    dnsResolvers: env.SANDBOX_DNS_SERVER,
    auroraCluster: RDS_CLUSTER_ID,
    rdsHost: env.SANDBOX_OLD_DB_HOST,
    auroraHost: env.SANDBOX_NEW_DB_HOST,
    dbPort: env.SANDBOX_DB_PORT,
    dbName: env.SANDBOX_DB_NAME,
    toolUser: env.SANDBOX_DB_USER,
    appUser: env.SANDBOX_APP_DB_USER,
    replUser: env.SANDBOX_DB_REPL_USER,
    reverseReplUser: env.SANDBOX_DB_REPL_USER,
    rdsInstance: RDS_OLD_INSTANCE_ID,
    auroraSecurityGroup: NEW_SECURITY_GROUP_ID,
    adminCidr: ADMIN_CIDR,
    webUrl: env.SANDBOX_APP_URL,
    mobileApiUrl: env.SANDBOX_APP_MOBILE_URL,
    // The demo app has two client paths; its admin path is the web route seen by an admin client.
    adminUrl: `${env.SANDBOX_APP_URL}?client=admin`,
    officeAddress: env.SANDBOX_APP_BYPASS_LOCAL_ADDRESS,
    bypassHeader: env.SANDBOX_APP_BYPASS_HEADER,
    maintenanceScript: files.maintenanceScript,
    cronHosts: 'local',
    cronFiles: `${env.SANDBOX_CRONTAB_APP1},${env.SANDBOX_CRONTAB_APP2}`,
    cronUserCrontab: 'false',
    checksumTables: `${env.SANDBOX_DB_NAME}.orders,${env.SANDBOX_DB_NAME}.products,${env.SANDBOX_DB_NAME}.customers`,
    route53PollInterval: '200ms',
    // No grace (nobody to wait for in a rehearsal); a quiet interval that usually meets a heartbeat.
    drainGrace: '0s',
    drainQuiet: '1500ms',
  };
}

export function writeRehearsalFiles(env: SandboxEnv): RehearsalFiles {
  const files = rehearsalFilePaths(env.SANDBOX_DIR);
  writeEnvFile(files.vars, templateVars(env, files), [
    'cutover sandbox: the parameters of runbooks/rds-to-aurora.yaml for this sandbox',
    'cutover rehearse runbooks/rds-to-aurora.yaml --var-file .sandbox/rds-to-aurora.vars',
  ]);
  writeEnvFile(
    files.secrets,
    {
      RDS_CUTOVER_PASSWORD: env.SANDBOX_DB_PASSWORD,
      AURORA_CUTOVER_PASSWORD: env.SANDBOX_DB_PASSWORD,
      SHOP_APP_DB_PASSWORD: env.SANDBOX_APP_DB_PASSWORD,
      REVERSE_REPL_PASSWORD: env.SANDBOX_DB_REPL_PASSWORD,
      MAINTENANCE_BYPASS_TOKEN: env.SANDBOX_APP_BYPASS_TOKEN,
      CUTOVER_SLACK_WEBHOOK: `${env.SANDBOX_APP_ADMIN_URL}/notify`,
      CUTOVER_AWS_ENDPOINT: env.CUTOVER_AWS_ENDPOINT,
      AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
    },
    ['cutover sandbox: the secrets runbooks/rds-to-aurora.yaml reads from the environment (mode 0600)'],
  );
  mkdirSync(join(env.SANDBOX_DIR, 'bin'), { recursive: true });
  writeFileSync(
    files.maintenanceScript,
    `#!/bin/sh\n# The team's maintenance switch, sandbox edition: maintenance on|off for every client path.\nset -e\ncase "$1" in on) scope="--scope all" ;; off) scope="" ;; *) echo "usage: maintenance on|off" >&2; exit 2 ;; esac\nexec ${sh(process.execPath)} ${sh(env.SANDBOX_APP_CTL)} maintenance "$1" $scope --dir ${sh(env.SANDBOX_DIR)}\n`,
  );
  chmodSync(files.maintenanceScript, 0o755);
  return files;
}
