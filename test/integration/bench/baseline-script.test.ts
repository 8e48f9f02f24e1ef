// The benchmark's baseline (bench/baseline/cutover.sh) is only a fair opponent if it really cuts the
// sandbox over: run it against the test sandbox from seed and check the end state from outside —
// DNS, both servers, replication, fence, maintenance, crontabs — then that it stops at the first
// failed step with a non-zero exit and says which. The sandbox is put back to seed after each test.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeSecurityGroupRulesCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveHost } from '../../../src/adapters/resolve.js';
import { clearFaults, injectFault } from '../../../src/sandbox/admin-client.js';
import { SEED_CRONTABS } from '../../../src/sandbox/config.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { readMaintenance } from '../../../src/sandbox/maintenance.js';
import { REPO } from '../../helpers/cli.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';

const env = sandboxEnv();
const SCRIPT = join(REPO, 'bench', 'baseline', 'cutover.sh');

function runScript(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // Nothing of the sandbox in the environment: the script must read it all from the env file.
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('SANDBOX_') && !k.startsWith('AWS_')),
    );
    const child = spawn('bash', [SCRIPT, ...args], { cwd: REPO, env: clean });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

async function server(role: 'old' | 'new') {
  const c = await rootConnection(role === 'old' ? env.SANDBOX_OLD_DB_SOCKET : env.SANDBOX_NEW_DB_SOCKET);
  try {
    const [[ro]] = await c.query<RowDataPacket[]>('SELECT @@global.read_only AS ro');
    const [status] = await c.query<RowDataPacket[]>('SHOW SLAVE STATUS');
    const s = status[0];
    return {
      readOnly: Number(ro!.ro) === 1,
      replicating: s ? s.Slave_IO_Running === 'Yes' || s.Slave_SQL_Running === 'Yes' : false,
    };
  } finally {
    await c.end();
  }
}

const answer = async () => (await resolveHost(env.SANDBOX_RECORD_NAME, [env.SANDBOX_DNS_SERVER])).address;

async function appSubnetRules(): Promise<number> {
  const ec2 = new EC2Client({ endpoint: env.CUTOVER_AWS_ENDPOINT, region: env.AWS_REGION });
  const { SecurityGroupRules: rules = [] } = await ec2.send(
    new DescribeSecurityGroupRulesCommand({
      Filters: [{ Name: 'group-id', Values: [env.SANDBOX_SECURITY_GROUP_ID] }],
    }),
  );
  return rules.filter((r) => !r.IsEgress && r.CidrIpv4 === env.SANDBOX_APP_SUBNET_CIDR).length;
}

describe('bench/baseline/cutover.sh', () => {
  beforeEach(async () => {
    await resetSandbox(env);
  });
  afterEach(async () => {
    await clearFaults(env);
    await resetSandbox(env);
  });

  it('cuts the seed sandbox over: DNS answers new, new writable, old read-only, replication stopped', async () => {
    expect(await answer()).toBe(env.SANDBOX_OLD_DB_HOST);
    expect(await server('new')).toEqual({ readOnly: true, replicating: true });
    expect(await appSubnetRules()).toBe(1);

    const r = await runScript([join(env.SANDBOX_DIR, 'env')]);
    expect(r.stderr).toMatch(/crons on; cut over in \d+ ms/);
    expect(r.code).toBe(0);

    expect(await answer()).toBe(env.SANDBOX_NEW_DB_HOST);
    expect(await server('new')).toEqual({ readOnly: false, replicating: false });
    expect((await server('old')).readOnly).toBe(true);
    expect(await appSubnetRules()).toBe(0);
    expect(readMaintenance(env.SANDBOX_MAINTENANCE_FILE).enabled).toBe(false);
    // Crons back on byte for byte (the marker stripped exactly).
    expect(readFileSync(env.SANDBOX_CRONTAB_APP1, 'utf8')).toBe(SEED_CRONTABS.app1);
    expect(readFileSync(env.SANDBOX_CRONTAB_APP2, 'utf8')).toBe(SEED_CRONTABS.app2);
    // No database password on the terminal (the AWS keys are the dummy "sandbox", a word of every name).
    for (const secret of [env.SANDBOX_DB_PASSWORD, env.SANDBOX_APP_DB_PASSWORD])
      expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it('stops at a failed step with exit 1 and names it (no rollback: it leaves things where they are)', async () => {
    await injectFault(env, { action: 'route53:ChangeResourceRecordSets', mode: 'deny' });
    const r = await runScript([join(env.SANDBOX_DIR, 'env')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED: Route 53 UPSERT of /);
    expect(r.stderr).not.toMatch(/maintenance off|crons on/);
    expect(await answer()).toBe(env.SANDBOX_OLD_DB_HOST);
    expect((await server('old')).readOnly).toBe(true);
    expect(readMaintenance(env.SANDBOX_MAINTENANCE_FILE).enabled).toBe(true);
  });

  it('refuses an unreadable env file with exit 2 and one usage message, changing nothing', async () => {
    const r = await runScript([join(env.SANDBOX_DIR, 'no-such-env')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^baseline: cannot read .*no-such-env/);
    expect(await server('new')).toEqual({ readOnly: true, replicating: true });
    expect(readMaintenance(env.SANDBOX_MAINTENANCE_FILE).enabled).toBe(false);
  });
});
