import { writeFileSync } from 'node:fs';
import { ChangeResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import { RevokeSecurityGroupIngressCommand } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { calls, resetCalls, setMaintenance } from '../../../src/sandbox/admin-client.js';
import { captureSandboxState, resetSandbox } from '../../../src/sandbox/index.js';
import { runCli } from '../../helpers/cli.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { connect } from '../mysql/harness.js';
import { awsClients, upsertRecord } from './helpers.js';

const env = sandboxEnv();

describe('captureSandboxState / resetSandbox', () => {
  afterEach(() => resetSandbox(env));

  it('is stable when nothing changed, and makes no AWS API call', async () => {
    await resetCalls(env);
    const a = await captureSandboxState(env);
    const b = await captureSandboxState(env);
    expect(b).toEqual(a);
    expect((await calls(env)).total).toBe(0);
    expect(a.servers.old).toEqual({
      readOnly: false,
      superReadOnly: null,
      replication: [],
      lockedAccounts: [],
      events: [],
      eventScheduler: false,
    });
    expect(a.dnsAnswer).toEqual([env.SANDBOX_DB_OLD_NAME]);
    expect(a.servers.new.readOnly).toBe(true);
    expect(a.servers.new.replication).toEqual([
      {
        connection: '',
        sourceHost: env.SANDBOX_OLD_DB_HOST,
        sourcePort: Number(env.SANDBOX_DB_PORT),
        ioState: 'Yes',
        sqlRunning: true,
        usingGtid: 'Slave_Pos',
        lastIoErrno: 0,
        lastSqlErrno: 0,
      },
    ]);
    expect(a.maintenance).toEqual({ enabled: false });
    expect(a.securityGroups[env.SANDBOX_SECURITY_GROUP_ID]).toContainEqual({
      ipProtocol: 'tcp',
      fromPort: 3306,
      toPort: 3306,
      cidrIpv4: env.SANDBOX_APP_SUBNET_CIDR,
      description: 'app servers',
    });
    expect(JSON.stringify(a)).not.toMatch(/sgr-/);
  });

  it('sees every change a cutover makes, and resetSandbox puts the seed back', async () => {
    const seed = await captureSandboxState(env);
    const { ec2, route53 } = awsClients(env);
    await ec2.send(
      new RevokeSecurityGroupIngressCommand({
        GroupId: env.SANDBOX_SECURITY_GROUP_ID,
        IpPermissions: [
          {
            IpProtocol: 'tcp',
            FromPort: 3306,
            ToPort: 3306,
            IpRanges: [{ CidrIp: env.SANDBOX_APP_SUBNET_CIDR }],
          },
        ],
      }),
    );
    await route53.send(new ChangeResourceRecordSetsCommand(upsertRecord(env, env.SANDBOX_DB_NEW_NAME, 5)));
    await setMaintenance(env, { enabled: true, scope: 'web' });
    writeFileSync(env.SANDBOX_CRONTAB_APP1, '# disabled by cutover\n');
    const [o, n] = await Promise.all([connect(env, 'old', 'tool'), connect(env, 'new', 'tool')]);
    await o.query('SET GLOBAL read_only = 1');
    await o.query(`ALTER USER '${env.SANDBOX_APP_DB_USER}'@'%' ACCOUNT LOCK`);
    await n.query('STOP SLAVE');
    await Promise.all([o.end(), n.end()]);

    // The DNS server answers a change once Route 53 has it INSYNC (the sandbox's delay).
    let changed = await captureSandboxState(env);
    for (let i = 0; i < 40 && changed.dnsAnswer[0] !== env.SANDBOX_DB_NEW_NAME; i++) {
      await new Promise((r) => setTimeout(r, 100));
      changed = await captureSandboxState(env);
    }
    expect(changed.securityGroups).not.toEqual(seed.securityGroups);
    expect(changed.records).not.toEqual(seed.records);
    expect(changed.maintenance).toEqual({ enabled: true, scope: 'web' });
    expect(changed.crontabs.app1).toBe('# disabled by cutover\n');
    expect(changed.servers.old.readOnly).toBe(true);
    expect(changed.servers.old.lockedAccounts).toEqual([`${env.SANDBOX_APP_DB_USER}@%`]);
    expect(changed.dnsAnswer).toEqual([env.SANDBOX_DB_NEW_NAME]);
    expect(changed.servers.new.replication[0]).toMatchObject({ ioState: 'No', sqlRunning: false });

    await resetSandbox(env);
    expect(await captureSandboxState(env)).toEqual(seed);
  });

  it('`cutover sandbox reset` (the CLI) puts a cut-over sandbox back to its seed state', async () => {
    const seed = await captureSandboxState(env);
    await setMaintenance(env, { enabled: true, scope: 'all' });
    const o = await connect(env, 'old', 'tool');
    await o.query('SET GLOBAL read_only = 1');
    await o.end();
    expect(await captureSandboxState(env)).not.toEqual(seed);
    const r = await runCli(['sandbox', 'reset', '--dir', env.SANDBOX_DIR]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/back to the seed state/);
    expect(await captureSandboxState(env)).toEqual(seed);
  });
});
