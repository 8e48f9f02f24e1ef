// The AWS kinds against the sandbox's AWS side in its rds profile (POST /_sandbox/reset
// {platform: "rds"}): a private hosted zone, old as an RDS instance carrying two groups that both let
// the app in, group-referenced replication rules each way, an Aurora writer and reader. The fence
// then also locks `repl` on old when new can no longer reach it (review M4a). Real SDK clients, the
// sandbox DNS server as the VPC resolver, MariaDB enforcing the fence. The file ends on the self profile.
import net from 'node:net';
import { GetHostedZoneCommand } from '@aws-sdk/client-route-53';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rdsDescribe } from '../../../src/steps/aws/rds-describe.js';
import { routeFlip } from '../../../src/steps/aws/route53-flip.js';
import { routeSetTtl } from '../../../src/steps/aws/route53-set-ttl.js';
import { ruleProperties, sortRules } from '../../../src/steps/aws/rules.js';
import { securityGroupRestore } from '../../../src/steps/aws/security-group-restore.js';
import { securityGroupRestrict } from '../../../src/steps/aws/security-group-restrict.js';
import { calls, resetCalls } from '../../../src/sandbox/admin-client.js';
import {
  OLD_EXTRA_SECURITY_GROUP_ID,
  RDS_OLD_INSTANCE_ID,
  RDS_READER_INSTANCE_ID,
} from '../../../src/sandbox/aws-state.js';
import type { SandboxEnv } from '../../../src/sandbox/index.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { awsClients } from '../sandbox/helpers.js';
import { createHarness, type Harness, runStep, undoStep } from './harness.js';

let env: SandboxEnv;
let clients: ReturnType<typeof awsClients>;
const harnesses: Harness[] = [];

async function resetTo(platform: 'self' | 'rds'): Promise<void> {
  const res = await fetch(`${env.SANDBOX_ADMIN_URL}/reset`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ platform }),
  });
  expect(res.status).toBe(200);
}

function harness(mode: 'live' | 'dry', endpoint = env.CUTOVER_AWS_ENDPOINT): Harness {
  const h = createHarness({
    mode,
    env: { ...process.env, ...env },
    aws: { endpoint, region: env.AWS_REGION },
  });
  harnesses.push(h);
  return h;
}

const OLD_SG = () => env.SANDBOX_SECURITY_GROUP_ID;
const NEW_SG = () => env.SANDBOX_NEW_SECURITY_GROUP_ID;

async function portRules(groupId: string) {
  const { DescribeSecurityGroupRulesCommand } = await import('@aws-sdk/client-ec2');
  const res = await clients.ec2.send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
  );
  return sortRules(
    (res.SecurityGroupRules ?? [])
      .filter((r) => !r.IsEgress)
      .map((r) => ({
        protocol: r.IpProtocol ?? '-1',
        fromPort: r.FromPort ?? -1,
        toPort: r.ToPort ?? -1,
        ...(r.CidrIpv4 ? { cidrIpv4: r.CidrIpv4 } : {}),
        ...(r.ReferencedGroupInfo?.GroupId ? { referencedGroupId: r.ReferencedGroupInfo.GroupId } : {}),
        ...(r.Description ? { description: r.Description } : {}),
      })),
  ).map(ruleProperties);
}

async function mutatingCalls(): Promise<number> {
  return (await calls(env)).mutatingCalls;
}

/** A StepError's code, or the error itself when the call did not fail. */
async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected a failure');
}

/** Can `user` open a NEW session on old? (the fence locks accounts, open sessions live on) */
async function login(user: string, password: string): Promise<string> {
  try {
    const c = await mysql.createConnection({
      host: env.SANDBOX_OLD_DB_HOST,
      port: Number(env.SANDBOX_DB_PORT),
      user,
      password,
      connectTimeout: 3000,
    });
    await c.end();
    return 'ok';
  } catch (e) {
    // mysql2 names errors by MySQL's numbers: MariaDB's 4151 comes out under another name.
    return /account is locked/i.test((e as Error).message) ? 'locked' : String(e);
  }
}

const flipParams = (extra: Record<string, unknown> = {}) => ({
  zoneId: env.SANDBOX_ZONE_ID,
  name: env.SANDBOX_RECORD_NAME,
  type: 'CNAME',
  value: env.SANDBOX_DB_NEW_NAME,
  syncInterval: '100ms',
  resolveInterval: '100ms',
  ...extra,
});

beforeAll(() => {
  env = sandboxEnv();
  clients = awsClients(env);
});

beforeEach(async () => {
  await resetTo('rds');
  await resetCalls(env);
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

afterAll(async () => {
  await resetTo('self');
  clients.ec2.destroy();
  clients.route53.destroy();
  clients.rds.destroy();
});

describe('rds profile: the private hosted zone (C3)', () => {
  it('GetHostedZone says PrivateZone with its VPC and no DelegationSet', async () => {
    const z = await clients.route53.send(new GetHostedZoneCommand({ Id: env.SANDBOX_ZONE_ID }));
    expect(z.HostedZone?.Config?.PrivateZone).toBe(true);
    expect(z.VPCs?.map((v) => v.VPCId)).toEqual(['vpc-0sandbox00000001']);
    expect(z.DelegationSet).toBeUndefined();
  });

  it('C3: plan of a flip on a private zone without resolvers fails before any change', async () => {
    const h = harness('dry');
    const params = routeFlip.params.parse(flipParams());
    const pre = await failure(routeFlip.preflight!(h.ctx('flip-dns'), params));
    expect(pre.code).toBe('PRIVATE_ZONE_NEEDS_RESOLVERS');
    expect(pre.message).toMatch(/private hosted zone .*resolvers:/);
    expect(pre.message.split('\n')).toHaveLength(1);
    // The kind's own path holds too, for an engine that does not call preflight.
    expect((await failure(runStep(h, routeFlip, flipParams(), 'flip-dns'))).code).toBe(
      'PRIVATE_ZONE_NEEDS_RESOLVERS',
    );
    expect(h.planLines()).toEqual([]);
  });

  it('C3: a run of that flip fails before any change: no ChangeResourceRecordSets', async () => {
    const h = harness('live');
    expect((await failure(runStep(h, routeFlip, flipParams(), 'flip-dns'))).code).toBe(
      'PRIVATE_ZONE_NEEDS_RESOLVERS',
    );
    expect(await mutatingCalls()).toBe(0);
  });

  it('C3: a resolver that does not serve the private zone is refused before any change', async () => {
    const h = harness('live');
    // Nothing answers there, as a resolver outside the VPC answers nothing for the zone.
    const e = await failure(runStep(h, routeFlip, flipParams({ resolvers: ['127.0.0.1:9'] }), 'flip-dns'));
    expect(e.code).toBe('RESOLVER_CANNOT_SEE_ZONE');
    expect(await mutatingCalls()).toBe(0);
  });

  it('C3: with the VPC resolver listed, the flip goes through and undo puts the record back', async () => {
    const h = harness('live');
    const params = flipParams({ resolvers: [env.SANDBOX_DNS_SERVER] });
    await routeFlip.preflight!(h.ctx(), routeFlip.params.parse(params));
    const step = await runStep(h, routeFlip, params, 'flip-dns');
    expect(step.outputs.changed).toBe(true);
    await undoStep(h, routeFlip, step);
    expect(await mutatingCalls()).toBe(2);
  });
});

describe('rds profile: the fence against every group and the replication path (M4)', () => {
  it('M4c: describe reports the VpcSecurityGroups of the cluster and of the old RDS instance', async () => {
    const h = harness('live');
    const cluster = await runStep(h, rdsDescribe, { cluster: env.SANDBOX_RDS_CLUSTER_ID });
    expect(cluster.outputs.securityGroupIds).toEqual([NEW_SG()]);
    const old = await runStep(h, rdsDescribe, { instance: RDS_OLD_INSTANCE_ID });
    expect(old.outputs).toMatchObject({
      role: 'writer',
      clusterId: '',
      endpoint: env.SANDBOX_DB_OLD_NAME,
      securityGroupIds: [OLD_SG(), OLD_EXTRA_SECURITY_GROUP_ID],
    });
  });

  it('issue 13: describe of an Aurora reader says reader and gives the cluster endpoint as writerEndpoint', async () => {
    const h = harness('live');
    const r = await runStep(h, rdsDescribe, { instance: RDS_READER_INSTANCE_ID });
    expect(r.outputs).toMatchObject({
      role: 'reader',
      writerEndpoint: env.SANDBOX_DB_NEW_NAME,
      writerInstance: env.SANDBOX_RDS_INSTANCE_ID,
      clusterId: env.SANDBOX_RDS_CLUSTER_ID,
    });
    expect(r.outputs.writerEndpoint).not.toBe(r.outputs.endpoint);
    const w = await runStep(h, rdsDescribe, { instance: env.SANDBOX_RDS_INSTANCE_ID });
    expect(w.outputs.role).toBe('writer');
  });

  it('M4c: fencing only the first group leaves the app a way in through the second', async () => {
    const h = harness('live');
    const step = await runStep(h, securityGroupRestrict, {
      groupId: OLD_SG(),
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR, NEW_SG()],
    });
    expect(step.outputs.revoked).toBe(1);
    // The legacy group still lets the app subnet in: the fence model keeps app unlocked.
    expect(await login(env.SANDBOX_APP_DB_USER, env.SANDBOX_APP_DB_PASSWORD)).toBe('ok');
    await undoStep(h, securityGroupRestrict, step);
  });

  it('M4c: restrict with instance fences every group attached to it; undo restores each exactly', async () => {
    const before = {
      [OLD_SG()]: await portRules(OLD_SG()),
      [OLD_EXTRA_SECURITY_GROUP_ID]: await portRules(OLD_EXTRA_SECURITY_GROUP_ID),
    };
    const h = harness('live');
    const step = await runStep(h, securityGroupRestrict, {
      instance: RDS_OLD_INSTANCE_ID,
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR, NEW_SG()],
      keepOpen: { cluster: env.SANDBOX_RDS_CLUSTER_ID },
    });
    expect(step.outputs.groupIds).toEqual([OLD_SG(), OLD_EXTRA_SECURITY_GROUP_ID]);
    for (const g of [OLD_SG(), OLD_EXTRA_SECURITY_GROUP_ID]) {
      const on3306 = (await portRules(g)).filter((r) => r.fromPort === 3306);
      expect(on3306.map((r) => r.cidrIpv4 ?? r.referencedGroupId).sort()).toEqual(
        [env.SANDBOX_ADMIN_CIDR, NEW_SG()].sort(),
      );
    }
    expect(await login(env.SANDBOX_APP_DB_USER, env.SANDBOX_APP_DB_PASSWORD)).toBe('locked');
    // New's group is allowlisted: replication keeps its path (M4a).
    expect(await login(env.SANDBOX_DB_REPL_USER, env.SANDBOX_DB_REPL_PASSWORD)).toBe('ok');
    await undoStep(h, securityGroupRestrict, step);
    expect(await portRules(OLD_SG())).toEqual(before[OLD_SG()]);
    expect(await portRules(OLD_EXTRA_SECURITY_GROUP_ID)).toEqual(before[OLD_EXTRA_SECURITY_GROUP_ID]);
    expect(await login(env.SANDBOX_APP_DB_USER, env.SANDBOX_APP_DB_PASSWORD)).toBe('ok');
  });

  it('aws.security-group.restore puts every group a restrict fenced back from its outputs.groups; its undo fences again', async () => {
    const groups = [OLD_SG(), OLD_EXTRA_SECURITY_GROUP_ID];
    const before = await Promise.all(groups.map(portRules));
    const h = harness('live');
    const fence = await runStep(h, securityGroupRestrict, {
      instance: RDS_OLD_INSTANCE_ID,
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR],
    });
    const fenced = await Promise.all(groups.map(portRules));
    const reopen = await runStep(h, securityGroupRestore, { groups: fence.outputs.groups, port: 3306 });
    expect(reopen.outputs.added).toBeGreaterThanOrEqual(2);
    expect(await Promise.all(groups.map(portRules))).toEqual(before);
    expect(await login(env.SANDBOX_APP_DB_USER, env.SANDBOX_APP_DB_PASSWORD)).toBe('ok');
    await undoStep(h, securityGroupRestore, reopen);
    expect(await Promise.all(groups.map(portRules))).toEqual(fenced);
    await undoStep(h, securityGroupRestrict, fence);
    expect(await Promise.all(groups.map(portRules))).toEqual(before);
  });

  it('M4a: a fence that cuts new off locks repl on old, so a replica reconnect is refused until undo', async () => {
    const h = harness('live');
    const step = await runStep(h, securityGroupRestrict, {
      instance: RDS_OLD_INSTANCE_ID,
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR],
    });
    expect(await login(env.SANDBOX_DB_REPL_USER, env.SANDBOX_DB_REPL_PASSWORD)).toBe('locked');
    await undoStep(h, securityGroupRestrict, step);
    expect(await login(env.SANDBOX_DB_REPL_USER, env.SANDBOX_DB_REPL_PASSWORD)).toBe('ok');
  });

  it('M4b: restrict refuses a fence group attached to the target (keepOpen), in plan and run, before any change', async () => {
    const params = {
      groupIds: [OLD_SG(), NEW_SG()],
      port: 3306,
      allow: [env.SANDBOX_ADMIN_CIDR],
      keepOpen: { cluster: env.SANDBOX_RDS_CLUSTER_ID },
    };
    const dry = harness('dry');
    const pre = await failure(
      securityGroupRestrict.preflight!(dry.ctx(), securityGroupRestrict.params.parse(params)),
    );
    expect(pre.code).toBe('SG_FENCE_ON_TARGET');
    expect(pre.message).toContain(`${NEW_SG()} is attached to cluster ${env.SANDBOX_RDS_CLUSTER_ID}`);
    expect((await failure(runStep(harness('live'), securityGroupRestrict, params))).code).toBe(
      'SG_FENCE_ON_TARGET',
    );
    // The same from an aws.rds.describe output.
    const aurora = await runStep(harness('live'), rdsDescribe, { cluster: env.SANDBOX_RDS_CLUSTER_ID });
    const viaOutput = { ...params, keepOpen: { groupIds: aurora.outputs.securityGroupIds } };
    expect((await failure(runStep(harness('live'), securityGroupRestrict, viaOutput))).code).toBe(
      'SG_FENCE_ON_TARGET',
    );
    expect(await mutatingCalls()).toBe(0);
  });
});

describe('issue 13 on the rds profile', () => {
  it('issue 13: restrict of a group that does not exist fails in plan and run before any change', async () => {
    const params = { groupId: 'sg-0doesnotexist1', port: 3306, allow: [env.SANDBOX_ADMIN_CIDR] };
    const dry = harness('dry');
    const pre = await failure(
      securityGroupRestrict.preflight!(dry.ctx(), securityGroupRestrict.params.parse(params)),
    );
    expect(pre.code).toBe('AWS_NOT_FOUND');
    expect(pre.message).toContain('sg-0doesnotexist1');
    expect((await failure(runStep(dry, securityGroupRestrict, params))).code).toBe('AWS_NOT_FOUND');
    expect((await failure(runStep(harness('live'), securityGroupRestrict, params))).code).toBe(
      'AWS_NOT_FOUND',
    );
    expect(await mutatingCalls()).toBe(0);
  });

  it('issue 13: a restrict that would revoke nothing is an error, not a success', async () => {
    // New's group only lets in the app subnet, the admin CIDR and old's group: all allowlisted.
    const params = {
      groupId: NEW_SG(),
      port: 3306,
      allow: [env.SANDBOX_APP_SUBNET_CIDR, env.SANDBOX_ADMIN_CIDR, OLD_SG()],
    };
    const e = await failure(runStep(harness('live'), securityGroupRestrict, params));
    expect(e.code).toBe('SG_FENCES_NOTHING');
    expect(await mutatingCalls()).toBe(0);
  });

  it('issue 13: a flip of a name with no record set fails unless create: true; the plan says would create', async () => {
    const base = flipParams({ name: `typo.${env.SANDBOX_ZONE_NAME}`, resolvers: [env.SANDBOX_DNS_SERVER] });
    // Before the run's first step (preflight), and in the kind's own path.
    const pre = await failure(routeFlip.preflight!(harness('dry').ctx(), routeFlip.params.parse(base)));
    expect(pre.code).toBe('RECORD_NOT_FOUND');
    expect(pre.message).toMatch(/typo\..* create: true/);
    await routeFlip.preflight!(harness('dry').ctx(), routeFlip.params.parse({ ...base, create: true }));
    expect((await failure(runStep(harness('live'), routeFlip, base))).code).toBe('RECORD_NOT_FOUND');
    const setTtl = { zoneId: env.SANDBOX_ZONE_ID, name: base.name, type: 'CNAME', ttl: 1 };
    expect(
      (await failure(routeSetTtl.preflight!(harness('dry').ctx(), routeSetTtl.params.parse(setTtl)))).code,
    ).toBe('RECORD_NOT_FOUND');
    expect(await mutatingCalls()).toBe(0);
    const dry = harness('dry');
    const planned = await runStep(dry, routeFlip, { ...base, create: true });
    expect(routeFlip.describe(planned.params, planned.snapshot)[0]).toMatch(/^would create typo\./);
    expect(dry.planLines().join('\n')).toMatch(/create/);
  });
});

describe('network resets', () => {
  it('issue 13: a connection reset (socket hang up) is retried like throttling', async () => {
    const target = new URL(env.CUTOVER_AWS_ENDPOINT);
    let resets = 1;
    const proxy = net.createServer((client) => {
      if (resets-- > 0) return client.destroy(); // the first request dies mid-call
      const upstream = net.connect(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (proxy.address() as net.AddressInfo).port;
      const h = harness('live', `http://127.0.0.1:${port}`);
      const r = await runStep(h, rdsDescribe, { cluster: env.SANDBOX_RDS_CLUSTER_ID });
      expect(r.outputs.writerEndpoint).toBe(env.SANDBOX_DB_NEW_NAME);
      expect(resets).toBeLessThan(0);
      expect(h.logs.join('\n')).toMatch(/retry 1\//);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});
