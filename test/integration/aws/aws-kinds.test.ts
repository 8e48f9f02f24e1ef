// The AWS kinds against the sandbox's AWS-compatible endpoint through the real SDK clients, and the
// flip checked against the sandbox DNS server. The sandbox's admin routes inject faults (deny,
// throttle), delay INSYNC and count calls; every test leaves the sandbox as it found it.
import { DescribeSecurityGroupRulesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { queryServer } from '../../../src/adapters/dns.js';
import { rdsDescribe } from '../../../src/steps/aws/rds-describe.js';
import { rdsWait } from '../../../src/steps/aws/rds-wait.js';
import { routeFlip } from '../../../src/steps/aws/route53-flip.js';
import { routeSetTtl } from '../../../src/steps/aws/route53-set-ttl.js';
import { ruleProperties, type SgRule } from '../../../src/steps/aws/rules.js';
import { securityGroupRestore } from '../../../src/steps/aws/security-group-restore.js';
import { securityGroupRestrict } from '../../../src/steps/aws/security-group-restrict.js';
import {
  calls,
  clearFaults,
  injectFault,
  resetCalls,
  setInsyncDelay,
} from '../../../src/sandbox/admin-client.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { createHarness, type Harness, runStep, undoStep } from './harness.js';

let env: SandboxEnv;
let ec2: EC2Client;
let r53: Route53Client;
const harnesses: Harness[] = [];

function harness(mode: 'live' | 'dry', budgetMs?: number): Harness {
  const h = createHarness({
    mode,
    env: { ...process.env, ...env },
    ...(budgetMs !== undefined ? { budgetMs } : {}),
  });
  harnesses.push(h);
  return h;
}

/** The group's ingress rules by properties, as DescribeSecurityGroupRules answers them. */
async function ingress(): Promise<Omit<SgRule, 'id'>[]> {
  const res = await ec2.send(
    new DescribeSecurityGroupRulesCommand({
      Filters: [{ Name: 'group-id', Values: [env.SANDBOX_SECURITY_GROUP_ID] }],
    }),
  );
  return (res.SecurityGroupRules ?? [])
    .filter((r) => !r.IsEgress)
    .map((r) =>
      ruleProperties({
        protocol: r.IpProtocol ?? '-1',
        fromPort: r.FromPort ?? -1,
        toPort: r.ToPort ?? -1,
        ...(r.CidrIpv4 ? { cidrIpv4: r.CidrIpv4 } : {}),
        ...(r.ReferencedGroupInfo?.GroupId ? { referencedGroupId: r.ReferencedGroupInfo.GroupId } : {}),
        ...(r.Description ? { description: r.Description } : {}),
      }),
    )
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

async function recordSets() {
  const res = await r53.send(new ListResourceRecordSetsCommand({ HostedZoneId: env.SANDBOX_ZONE_ID }));
  return res.ResourceRecordSets;
}

const dnsServer = () => `127.0.0.1:${env.SANDBOX_DNS_PORT}`;
const OLD_TARGET = () => env.SANDBOX_DB_OLD_NAME!;
const NEW_TARGET = () => env.SANDBOX_DB_NEW_NAME!;

const restrictParams = () => ({
  groupId: env.SANDBOX_SECURITY_GROUP_ID,
  port: 3306,
  allow: [env.SANDBOX_ADMIN_CIDR!, '127.0.0.9/32'],
});
const flipParams = (extra: Record<string, unknown> = {}) => ({
  zoneId: env.SANDBOX_ZONE_ID,
  name: env.SANDBOX_RECORD_NAME,
  type: 'CNAME',
  value: NEW_TARGET(),
  resolvers: [dnsServer()],
  syncInterval: '200ms',
  resolveInterval: '100ms',
  ...extra,
});

beforeAll(() => {
  env = sandboxEnv();
  const cfg = {
    endpoint: env.CUTOVER_AWS_ENDPOINT,
    region: env.AWS_REGION ?? 'us-east-1',
    credentials: {
      accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'sandbox',
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'sandbox',
    },
  };
  ec2 = new EC2Client(cfg);
  r53 = new Route53Client(cfg);
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  await resetSandbox(env);
});

afterAll(() => {
  ec2?.destroy();
  r53?.destroy();
});

describe('aws.security-group.restrict', () => {
  it('leaves only the allowlist on the port, and undo restores the same rules by properties', async () => {
    const before = await ingress();
    const h = harness('live');
    const step = await runStep(h, securityGroupRestrict, restrictParams(), 'fence');
    const sg = env.SANDBOX_SECURITY_GROUP_ID;
    expect(step.outputs).toMatchObject({ groupId: sg, port: 3306, revoked: 1, added: 1 });
    expect(step.outputs.addedRuleIds).toHaveLength(1);
    expect(await ingress()).toEqual(
      [
        {
          protocol: 'tcp',
          fromPort: 22,
          toPort: 22,
          cidrIpv4: '10.0.9.0/24',
          description: 'ssh from admin VPN',
        },
        { protocol: 'tcp', fromPort: 3306, toPort: 3306, cidrIpv4: '10.0.9.0/24', description: 'admin VPN' },
        {
          protocol: 'tcp',
          fromPort: 3306,
          toPort: 3306,
          cidrIpv4: '127.0.0.9/32',
          description: 'cutover allowlist',
        },
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    expect(h.warnings).toEqual([
      expect.stringContaining('existing connections survive a security-group revoke'),
    ]);

    await undoStep(h, securityGroupRestrict, step);
    expect(await ingress()).toEqual(before);

    // Undo again (a second rollback attempt) changes nothing.
    await resetCalls(env);
    await undoStep(h, securityGroupRestrict, step);
    expect((await calls(env)).mutatingCalls).toBe(0);
    expect(await ingress()).toEqual(before);
  });

  it('plans the exact rules it would authorize and revoke, without a mutating call', async () => {
    await resetCalls(env);
    const h = harness('dry');
    const step = await runStep(h, securityGroupRestrict, restrictParams(), 'fence');
    const sg = env.SANDBOX_SECURITY_GROUP_ID;
    const expected = [
      `would authorize ${sg} tcp/3306 from 127.0.0.9/32 (cutover allowlist)`,
      `would revoke ${sg} tcp/3306 from 127.0.0.0/24 (app servers)`,
    ];
    expect(h.planLines()).toEqual(expected);
    expect(securityGroupRestrict.describe(step.params, step.snapshot)).toEqual([
      ...expected,
      'note: existing connections survive a security-group revoke (tracked connections stay open): pair this step with mysql.connections.drain',
    ]);
    const report = await calls(env);
    expect(report.mutatingCalls).toBe(0);
    expect(report.calls['ec2:DescribeSecurityGroupRules']).toBeGreaterThan(0);
    expect(h.env.stats.recorded).toEqual({
      'ec2:AuthorizeSecurityGroupIngress': 1,
      'ec2:RevokeSecurityGroupIngress': 1,
    });
  });

  it('retries a throttled call and goes through', async () => {
    await injectFault(env, { action: 'ec2:DescribeSecurityGroupRules', mode: 'throttle', count: 2 });
    await injectFault(env, { action: 'ec2:RevokeSecurityGroupIngress', mode: 'throttle', count: 1 });
    const h = harness('live');
    const step = await runStep(h, securityGroupRestrict, restrictParams(), 'fence');
    expect(step.outputs.revoked).toBe(1);
    const report = await calls(env);
    expect(report.calls['ec2:RevokeSecurityGroupIngress']).toBe(2);
    expect(h.logs.filter((l) => /RequestLimitExceeded, retry \d\/\d/.test(l))).toHaveLength(3);
  });

  it('fails with one line naming the group and the permission when the revoke is denied; undo of the half-applied step restores the rules', async () => {
    await injectFault(env, { action: 'ec2:RevokeSecurityGroupIngress', mode: 'deny' });
    const before = await ingress();
    const h = harness('live');
    const params = securityGroupRestrict.params.parse(restrictParams());
    const snapshot = JSON.parse(JSON.stringify(await securityGroupRestrict.snapshot!(h.ctx(), params)));
    const err = await securityGroupRestrict.apply(h.ctx(), params, snapshot).catch((e) => e);
    expect(err.code).toBe('AWS_ACCESS_DENIED');
    expect(err.message).toBe(
      `ec2 RevokeSecurityGroupIngress on security group ${env.SANDBOX_SECURITY_GROUP_ID} denied (UnauthorizedOperation): the credentials need ec2:RevokeSecurityGroupIngress on arn:aws:ec2:us-east-1:*:security-group/${env.SANDBOX_SECURITY_GROUP_ID}`,
    );
    // The allowlist rule went in before the denied revoke (authorize first, so allowed sources never
    // lose access): the engine undoes a failed step with a snapshot, which takes it out again.
    expect((await ingress()).length).toBe(before.length + 1);
    await clearFaults(env);
    await securityGroupRestrict.undo!(h.ctx(), params, snapshot, undefined);
    expect(await ingress()).toEqual(before);
  });
});

describe('aws.security-group.restore', () => {
  it('puts back the rule set a restrict journaled, and its own undo re-applies the restriction', async () => {
    const before = await ingress();
    const h = harness('live');
    const fence = await runStep(h, securityGroupRestrict, restrictParams(), 'fence');
    const restricted = await ingress();
    const restore = await runStep(
      h,
      securityGroupRestore,
      { groupId: env.SANDBOX_SECURITY_GROUP_ID, port: 3306, rules: fence.outputs.before },
      'reopen',
    );
    expect(restore.outputs).toEqual({ added: 1, revoked: 1 });
    expect(await ingress()).toEqual(before);
    await undoStep(h, securityGroupRestore, restore);
    expect(await ingress()).toEqual(restricted);
  });
});

describe('aws.route53.flip', () => {
  it('flips the record, DNS answers the new value, and undo leaves ListResourceRecordSets identical', async () => {
    const before = await recordSets();
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'CNAME', dnsServer())).values).toEqual([OLD_TARGET()]);
    const h = harness('live');
    const step = await runStep(h, routeFlip, flipParams(), 'flip');
    expect(step.outputs).toMatchObject({
      changed: true,
      oldTtl: 1,
      previous: `CNAME ${OLD_TARGET()}.`,
      current: `CNAME ${NEW_TARGET()}`,
    });
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'CNAME', dnsServer())).values).toEqual([NEW_TARGET()]);
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'A', dnsServer())).values).toEqual([
      env.SANDBOX_NEW_DB_HOST,
    ]);
    // The old TTL was waited out, with a countdown.
    expect(h.progress.some((p) => /waiting out the old TTL \(1s\)/.test(p.label))).toBe(true);
    expect(await recordSets()).not.toEqual(before);

    await undoStep(h, routeFlip, step);
    expect(await recordSets()).toEqual(before);
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'CNAME', dnsServer())).values).toEqual([OLD_TARGET()]);
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'A', dnsServer())).values).toEqual([
      env.SANDBOX_OLD_DB_HOST,
    ]);
  });

  it('polls a PENDING change until INSYNC, and only then sees the new DNS answer', async () => {
    await setInsyncDelay(env, 1500);
    await resetCalls(env);
    const h = harness('live');
    const t0 = Date.now();
    const step = await runStep(h, routeFlip, flipParams(), 'flip');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    const report = await calls(env);
    // PENDING at least once (1.5 s at 200 ms intervals), then INSYNC.
    expect(report.calls['route53:GetChange']).toBeGreaterThanOrEqual(3);
    expect(h.progress.some((p) => /INSYNC — PENDING/.test(p.label))).toBe(true);
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'CNAME', dnsServer())).values).toEqual([NEW_TARGET()]);
    await undoStep(h, routeFlip, step);
  });

  it('gives up waiting for INSYNC at the deadline', async () => {
    await setInsyncDelay(env, 60_000);
    const h = harness('live');
    const err = await runStep(h, routeFlip, flipParams({ syncTimeout: '1s' }), 'flip').catch((e) => e);
    expect(err.code).toBe('ROUTE53_NOT_INSYNC');
    expect(err.message).toMatch(
      /^Route 53 change \w+ \(flip of db\.sandbox\.internal CNAME in zone Z0SANDBOX0001\) still PENDING after 1\.0s: /,
    );
  });

  it('plans the record before → after without a mutating call', async () => {
    await resetCalls(env);
    const h = harness('dry');
    const step = await runStep(h, routeFlip, flipParams(), 'flip');
    const line = `would upsert ${env.SANDBOX_RECORD_NAME} CNAME in zone ${env.SANDBOX_ZONE_ID} (${OLD_TARGET()} TTL 1 → ${NEW_TARGET()} TTL 1)`;
    expect(h.planLines()).toEqual([line]);
    expect(routeFlip.describe(step.params, step.snapshot)[0]).toBe(line);
    const report = await calls(env);
    expect(report.mutatingCalls).toBe(0);
    expect(report.calls['route53:ListResourceRecordSets']).toBeGreaterThan(0);
    expect(report.calls['route53:GetChange']).toBeUndefined();
    expect((await queryServer(env.SANDBOX_RECORD_NAME, 'CNAME', dnsServer())).values).toEqual([OLD_TARGET()]);
  });

  it('fails with one clear line when the change is denied, and changes nothing', async () => {
    const before = await recordSets();
    await injectFault(env, { action: 'route53:ChangeResourceRecordSets', mode: 'deny' });
    const h = harness('live');
    const err = await runStep(h, routeFlip, flipParams(), 'flip').catch((e) => e);
    expect(err.code).toBe('AWS_ACCESS_DENIED');
    expect(err.message).toBe(
      `route53 ChangeResourceRecordSets on zone ${env.SANDBOX_ZONE_ID} denied (AccessDenied): the credentials need route53:ChangeResourceRecordSets on arn:aws:route53:::hostedzone/${env.SANDBOX_ZONE_ID}`,
    );
    expect(await recordSets()).toEqual(before);
  });

  it('retries a throttled change batch', async () => {
    await injectFault(env, { action: 'route53:ChangeResourceRecordSets', mode: 'throttle', count: 2 });
    const h = harness('live');
    const step = await runStep(h, routeFlip, flipParams(), 'flip');
    expect(step.outputs.changeId).toBeTruthy();
    expect((await calls(env)).calls['route53:ChangeResourceRecordSets']).toBe(3);
    expect(h.logs.filter((l) => /Throttling, retry/.test(l))).toHaveLength(2);
    await undoStep(h, routeFlip, step);
  });

  it('warns at run time when the old TTL exceeds the maintenance budget, and refuses above maxOldTtl', async () => {
    const h = harness('live', 500);
    const step = await runStep(h, routeFlip, flipParams({ waitForCaches: true }), 'flip');
    expect(h.warnings).toEqual([
      expect.stringMatching(/TTL \(1s\) exceeds the maintenance budget \(500ms\)/),
    ]);
    await undoStep(h, routeFlip, step);
    const before = await recordSets();
    const err = await runStep(harness('live'), routeFlip, flipParams({ maxOldTtl: 0 }), 'flip').catch(
      (e) => e,
    );
    expect(err.code).toBe('TTL_TOO_HIGH');
    expect(await recordSets()).toEqual(before);
  });
});

describe('aws.route53.set-ttl', () => {
  it('lowers the TTL and undo restores it, keeping the value', async () => {
    const before = await recordSets();
    const h = harness('live');
    const step = await runStep(
      h,
      routeSetTtl,
      {
        zoneId: env.SANDBOX_ZONE_ID,
        name: env.SANDBOX_RECORD_NAME,
        type: 'CNAME',
        ttl: 0,
        syncInterval: '200ms',
      },
      'ttl',
    );
    expect(step.outputs).toMatchObject({ previousTtl: 1, ttl: 0 });
    // The zone's propagation, kept for the window prediction (the sandbox's INSYNC delay).
    expect(step.outputs.insyncMs).toBeGreaterThanOrEqual(Number(env.SANDBOX_INSYNC_DELAY_MS) * 0.9);
    expect(step.outputs.insyncMs).toBeLessThan(10_000);
    const mine = (await recordSets())?.find((r) => r.Name === `${env.SANDBOX_RECORD_NAME}.`);
    expect(mine?.TTL).toBe(0);
    expect(mine?.ResourceRecords).toEqual([{ Value: `${OLD_TARGET()}.` }]);
    await undoStep(h, routeSetTtl, step);
    expect(await recordSets()).toEqual(before);
  });
});

describe('aws.rds.describe / aws.rds.wait', () => {
  it('reads endpoints, roles and status to feed later steps', async () => {
    const h = harness('dry');
    const { outputs } = await runStep(h, rdsDescribe, { cluster: env.SANDBOX_RDS_CLUSTER_ID }, 'rds');
    expect(outputs).toMatchObject({
      id: env.SANDBOX_RDS_CLUSTER_ID,
      status: 'available',
      engine: 'aurora-mysql',
      writerEndpoint: NEW_TARGET(),
      readerEndpoint: 'new-ro.db.sandbox.internal',
      writerInstance: env.SANDBOX_RDS_INSTANCE_ID,
      readerInstances: [],
      role: 'cluster',
    });
    const inst = await runStep(h, rdsDescribe, { instance: env.SANDBOX_RDS_INSTANCE_ID }, 'rds-i');
    expect(inst.outputs).toMatchObject({ role: 'writer', writerEndpoint: NEW_TARGET(), status: 'available' });
    const waited = await runStep(
      h,
      rdsWait,
      { cluster: env.SANDBOX_RDS_CLUSTER_ID, interval: '100ms', timeout: '5s' },
      'wait',
    );
    expect(waited.outputs.status).toBe('available');
  });

  it('names the cluster and what to check when it does not exist', async () => {
    const err = await runStep(harness('live'), rdsDescribe, { cluster: 'no-such-cluster' }, 'rds').catch(
      (e) => e,
    );
    expect(err.code).toBe('AWS_NOT_FOUND');
    expect(err.message).toMatch(
      /^rds DescribeDBClusters on cluster no-such-cluster failed: not found \(DBClusterNotFoundFault\): check the id and the region \(us-east-1\)/,
    );
    expect(err.message).not.toContain('\n');
  });
});
