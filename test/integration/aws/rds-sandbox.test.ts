// The AWS kinds against the managed-platform sandbox (`sandbox up --platform rds`, rdsSandboxEnv):
// its AWS side is the rds profile, and its MariaDB servers replicate through mysql.rds_* procedures
// the tool account may call. The review's M4a, end to end: a fence that leaves Aurora out stops the
// replica from reconnecting (rds_start_replication in a rollback), and allowing Aurora's group in
// the fence keeps the path.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeSecurityGroupRulesCommand } from '@aws-sdk/client-ec2';
import { GetHostedZoneCommand, ListResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { routeFlip } from '../../../src/steps/aws/route53-flip.js';
import { securityGroupRestrict } from '../../../src/steps/aws/security-group-restrict.js';
import { OLD_EXTRA_SECURITY_GROUP_ID, RDS_OLD_INSTANCE_ID } from '../../../src/sandbox/aws-state.js';
import { runSession } from '../../../src/session.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { rdsSandboxEnv } from '../../setup/sandbox-env.js';
import { awsClients } from '../sandbox/helpers.js';
import { createHarness, type Harness, runStep, undoStep } from './harness.js';

let env: SandboxEnv;
const harnesses: Harness[] = [];

function harness(mode: 'live' | 'dry'): Harness {
  const h = createHarness({ mode, env: { ...process.env, ...env } });
  harnesses.push(h);
  return h;
}

/** As the tool would in a rollback: restart replication on Aurora through the RDS procedures. */
async function restartReplication(): Promise<void> {
  const c = await mysql.createConnection({
    host: env.SANDBOX_NEW_DB_HOST,
    port: Number(env.SANDBOX_DB_PORT),
    user: env.SANDBOX_DB_USER,
    password: env.SANDBOX_DB_PASSWORD,
  });
  try {
    await c.query('CALL mysql.rds_stop_replication');
    await c.query('CALL mysql.rds_start_replication');
  } finally {
    await c.end();
  }
}

/** The replica's IO thread on new, read as root (the tool account has no SLAVE MONITOR there). */
async function ioThread(): Promise<{ running: string; error: string }> {
  const c = await rootConnection(env.SANDBOX_NEW_DB_SOCKET!);
  try {
    const [rows] = await c.query<RowDataPacket[]>('SHOW SLAVE STATUS');
    return { running: String(rows[0]?.Slave_IO_Running), error: String(rows[0]?.Last_IO_Error ?? '') };
  } finally {
    await c.end();
  }
}

async function until(what: string, ok: (s: { running: string; error: string }) => boolean, ms = 15_000) {
  const deadline = Date.now() + ms;
  let s = await ioThread();
  while (!ok(s)) {
    if (Date.now() > deadline) throw new Error(`${what}: IO thread ${s.running}, last error ${s.error}`);
    await new Promise((r) => setTimeout(r, 200));
    s = await ioThread();
  }
  return s;
}

beforeAll(() => {
  env = rdsSandboxEnv();
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

afterAll(async () => {
  await resetSandbox(env);
});

describe('managed sandbox (rds profile) and the AWS kinds', () => {
  it('C3: its zone is private, and a flip without resolvers fails before any change', async () => {
    const { route53 } = awsClients(env);
    const z = await route53.send(new GetHostedZoneCommand({ Id: env.SANDBOX_ZONE_ID }));
    route53.destroy();
    expect(z.HostedZone?.Config?.PrivateZone).toBe(true);
    expect(z.DelegationSet).toBeUndefined();
    const params = routeFlip.params.parse({
      zoneId: env.SANDBOX_ZONE_ID,
      name: env.SANDBOX_RECORD_NAME,
      type: 'CNAME',
      value: env.SANDBOX_DB_NEW_NAME,
    });
    await expect(routeFlip.preflight!(harness('dry').ctx(), params)).rejects.toMatchObject({
      code: 'PRIVATE_ZONE_NEEDS_RESOLVERS',
    });
  });

  it('M4a: a fence that leaves Aurora out makes the replica’s reconnect fail until undo; allowing Aurora’s group keeps it', async () => {
    expect((await ioThread()).running).toBe('Yes');
    const h = harness('live');
    const fence = await runStep(h, securityGroupRestrict, {
      instance: RDS_OLD_INSTANCE_ID,
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR],
    });
    // The running IO thread lives on (connection tracking); a restart must reconnect, and cannot.
    expect((await ioThread()).running).toBe('Yes');
    await restartReplication();
    const cut = await until('IO thread refused by the fence', (s) => /locked/i.test(s.error), 10_000);
    expect(cut.running).not.toBe('Yes');
    await undoStep(h, securityGroupRestrict, fence);
    // MASTER_CONNECT_RETRY=1: the replica gets back in on its own once the fence is lifted.
    await until('IO thread back after undo', (s) => s.running === 'Yes');

    const withAurora = await runStep(h, securityGroupRestrict, {
      instance: RDS_OLD_INSTANCE_ID,
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR, env.SANDBOX_NEW_SECURITY_GROUP_ID],
      keepOpen: { cluster: env.SANDBOX_RDS_CLUSTER_ID },
    });
    await restartReplication();
    await until('IO thread reconnects through the allowlisted group', (s) => s.running === 'Yes', 5_000);
    await undoStep(h, securityGroupRestrict, withAurora);
  });

  it('the template’s AWS steps as designed (describe → fence every group, Aurora’s kept → flip via the VPC resolver): run, then rollback restores every group and the record', async () => {
    const { ec2, route53 } = awsClients(env);
    const groups = [env.SANDBOX_SECURITY_GROUP_ID, OLD_EXTRA_SECURITY_GROUP_ID];
    const rulesOf = async () =>
      (
        await ec2.send(
          new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: groups }] }),
        )
      ).SecurityGroupRules?.map(({ SecurityGroupRuleId: _i, SecurityGroupRuleArn: _a, ...r }) => r).sort(
        (a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)),
      );
    const recordsOf = async () =>
      (await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: env.SANDBOX_ZONE_ID })))
        .ResourceRecordSets;
    const rulesBefore = await rulesOf();
    const recordsBefore = await recordsOf();
    const dir = mkdtempSync(join(tmpdir(), 'cutover-rds-aws-'));
    try {
      const file = join(dir, 'aws.yaml');
      writeFileSync(
        file,
        `version: 1
name: rds-aws-steps
steps:
  - id: aurora-ready
    kind: aws.rds.describe
    with: { cluster: ${env.SANDBOX_RDS_CLUSTER_ID} }
  - id: fence-old
    kind: aws.security-group.restrict
    with:
      instance: ${RDS_OLD_INSTANCE_ID}
      port: 3306
      allow: ["${env.SANDBOX_ADMIN_CIDR}", "${env.SANDBOX_NEW_SECURITY_GROUP_ID}"]
      keepOpen: { cluster: ${env.SANDBOX_RDS_CLUSTER_ID} }
  - id: flip-dns
    kind: aws.route53.flip
    with:
      zoneId: ${env.SANDBOX_ZONE_ID}
      name: ${env.SANDBOX_RECORD_NAME}
      type: CNAME
      value: \${steps.aurora-ready.outputs.writerEndpoint}
      resolvers: ["${env.SANDBOX_DNS_SERVER}"]
      syncInterval: 200ms
      resolveInterval: 100ms
`,
      );
      // The rds sandbox's values are written into the runbook: process.env holds the self sandbox's.
      const opts = {
        runsDir: join(dir, 'runs'),
        yes: true,
        render: 'silent' as const,
        aws: { endpoint: env.CUTOVER_AWS_ENDPOINT, region: env.AWS_REGION },
      };
      const run = await runSession({ mode: 'run', file }, opts);
      expect(run.exitCode).toBe(0);
      expect(await rulesOf()).not.toEqual(rulesBefore);
      const back = await runSession({ mode: 'rollback', runDir: run.runDir! }, opts);
      expect(back.status).toBe('rolled-back');
      expect(await rulesOf()).toEqual(rulesBefore);
      expect(await recordsOf()).toEqual(recordsBefore);
    } finally {
      ec2.destroy();
      route53.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
