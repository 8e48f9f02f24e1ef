import {
  AuthorizeSecurityGroupIngressCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  ModifySecurityGroupRulesCommand,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { DescribeDBClustersCommand, DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListHostedZonesCommand,
  ListResourceRecordSetsCommand,
} from '@aws-sdk/client-route-53';
import { afterEach, describe, expect, it } from 'vitest';
import {
  calls,
  clearFaults,
  injectFault,
  resetCalls,
  setInsyncDelay,
} from '../../../src/sandbox/admin-client.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { awsClients, resolver, upsertRecord } from './helpers.js';

const env = sandboxEnv();
const { ec2, route53, rds } = awsClients(env);
const GroupId = env.SANDBOX_SECURITY_GROUP_ID;
const HostedZoneId = env.SANDBOX_ZONE_ID;
const mysqlPort = Number(env.SANDBOX_SECURITY_GROUP_PORT);

const rules = async () =>
  (
    await ec2.send(
      new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [GroupId] }] }),
    )
  ).SecurityGroupRules ?? [];

const upsert = (value: string, ttl = 1) => upsertRecord(env, value, ttl);

describe('sandbox AWS endpoint: EC2 security groups', () => {
  afterEach(() => resetSandbox(env));

  it('describes the seed group: tcp/3306 from the app subnet and the admin range', async () => {
    const out = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [GroupId] }));
    const g = out.SecurityGroups?.[0];
    expect(g?.GroupId).toBe(GroupId);
    expect(g?.VpcId).toMatch(/^vpc-/);
    const mysql = g?.IpPermissions?.find((p) => p.FromPort === mysqlPort);
    expect(mysql?.IpProtocol).toBe('tcp');
    expect(mysql?.IpRanges?.map((r) => [r.CidrIp, r.Description])).toEqual([
      [env.SANDBOX_APP_SUBNET_CIDR, 'app servers'],
      [env.SANDBOX_ADMIN_CIDR, 'admin VPN'],
    ]);
    const ids = (await rules()).map((r) => r.SecurityGroupRuleId);
    expect(ids.every((id) => id?.startsWith('sgr-'))).toBe(true);
  });

  it('a revoked rule (by id) is gone from DescribeSecurityGroupRules', async () => {
    const before = await rules();
    const app = before.find((r) => r.CidrIpv4 === env.SANDBOX_APP_SUBNET_CIDR && r.FromPort === mysqlPort);
    expect(app).toBeDefined();
    const out = await ec2.send(
      new RevokeSecurityGroupIngressCommand({ GroupId, SecurityGroupRuleIds: [app!.SecurityGroupRuleId!] }),
    );
    expect(out.Return).toBe(true);
    expect(out.RevokedSecurityGroupRules?.[0]?.SecurityGroupRuleId).toBe(app!.SecurityGroupRuleId);
    const after = await rules();
    expect(after.map((r) => r.SecurityGroupRuleId)).not.toContain(app!.SecurityGroupRuleId);
    expect(after).toHaveLength(before.length - 1);
  });

  it('authorize returns the new rule with its id; revoke by IpPermissions removes exactly it', async () => {
    const perm = {
      IpProtocol: 'tcp',
      FromPort: mysqlPort,
      ToPort: mysqlPort,
      IpRanges: [{ CidrIp: '10.0.5.10/32', Description: 'cutover host' }],
    };
    const added = await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({ GroupId, IpPermissions: [perm] }),
    );
    const rule = added.SecurityGroupRules?.[0];
    expect(rule).toMatchObject({
      GroupId,
      IsEgress: false,
      IpProtocol: 'tcp',
      FromPort: mysqlPort,
      ToPort: mysqlPort,
      CidrIpv4: '10.0.5.10/32',
      Description: 'cutover host',
    });
    expect(rule?.SecurityGroupRuleId).toMatch(/^sgr-[0-9a-f]{17}$/);
    await expect(
      ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId, IpPermissions: [perm] })),
    ).rejects.toMatchObject({
      name: 'InvalidPermission.Duplicate',
      $metadata: { httpStatusCode: 400 },
    });
    await ec2.send(
      new RevokeSecurityGroupIngressCommand({
        GroupId,
        IpPermissions: [{ ...perm, IpRanges: [{ CidrIp: '10.0.5.10/32' }] }],
      }),
    );
    expect((await rules()).map((r) => r.SecurityGroupRuleId)).not.toContain(rule?.SecurityGroupRuleId);
  });

  it('revoking a permission that matches nothing in a VPC group is InvalidPermission.NotFound, and changes nothing', async () => {
    const before = await rules();
    const err = await ec2
      .send(
        new RevokeSecurityGroupIngressCommand({
          GroupId,
          IpPermissions: [
            {
              IpProtocol: 'tcp',
              FromPort: mysqlPort,
              ToPort: mysqlPort,
              IpRanges: [{ CidrIp: env.SANDBOX_ADMIN_CIDR }],
            },
            {
              IpProtocol: 'tcp',
              FromPort: mysqlPort,
              ToPort: mysqlPort,
              IpRanges: [{ CidrIp: '192.0.2.0/24' }],
            },
          ],
        }),
      )
      .catch((e) => e);
    expect(err).toMatchObject({ name: 'InvalidPermission.NotFound', $metadata: { httpStatusCode: 400 } });
    expect(await rules()).toEqual(before);
  });

  it('modifies a rule in place, keeping its id', async () => {
    const admin = (await rules()).find(
      (r) => r.CidrIpv4 === env.SANDBOX_ADMIN_CIDR && r.FromPort === mysqlPort,
    )!;
    await ec2.send(
      new ModifySecurityGroupRulesCommand({
        GroupId,
        SecurityGroupRules: [
          {
            SecurityGroupRuleId: admin.SecurityGroupRuleId,
            SecurityGroupRule: {
              IpProtocol: 'tcp',
              FromPort: mysqlPort,
              ToPort: mysqlPort,
              CidrIpv4: '10.0.9.7/32',
              Description: 'one admin',
            },
          },
        ],
      }),
    );
    const after = (await rules()).find((r) => r.SecurityGroupRuleId === admin.SecurityGroupRuleId);
    expect(after).toMatchObject({ CidrIpv4: '10.0.9.7/32', Description: 'one admin' });
  });

  it('unknown groups and rule ids fail with the EC2 error codes', async () => {
    await expect(
      ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-0doesnotexist0001'] })),
    ).rejects.toMatchObject({ name: 'InvalidGroup.NotFound' });
    await expect(
      ec2.send(
        new RevokeSecurityGroupIngressCommand({ GroupId, SecurityGroupRuleIds: ['sgr-00000000000000000'] }),
      ),
    ).rejects.toMatchObject({
      name: 'InvalidSecurityGroupRuleId.NotFound',
    });
  });
});

describe('sandbox AWS endpoint: Route 53 and the DNS server', () => {
  afterEach(() => resetSandbox(env));

  it('finds the zone by name and lists the database record (CNAME → old)', async () => {
    const zones = await route53.send(new ListHostedZonesByNameCommand({ DNSName: env.SANDBOX_ZONE_NAME }));
    expect(zones.HostedZones?.[0]?.Id).toBe(`/hostedzone/${HostedZoneId}`);
    expect((await route53.send(new ListHostedZonesCommand({}))).HostedZones).toHaveLength(1);
    const zone = await route53.send(new GetHostedZoneCommand({ Id: HostedZoneId }));
    expect(zone.HostedZone?.Config?.PrivateZone).toBe(true);
    const rr = await route53.send(
      new ListResourceRecordSetsCommand({
        HostedZoneId,
        StartRecordName: env.SANDBOX_RECORD_NAME,
        StartRecordType: 'CNAME',
        MaxItems: 1,
      }),
    );
    expect(rr.ResourceRecordSets?.[0]).toEqual({
      Name: `${env.SANDBOX_RECORD_NAME}.`,
      Type: 'CNAME',
      TTL: 1,
      ResourceRecords: [{ Value: `${env.SANDBOX_DB_OLD_NAME}.` }],
    });
    expect(await resolver(env).resolve4(env.SANDBOX_RECORD_NAME)).toEqual([env.SANDBOX_OLD_DB_HOST]);
  });

  it('an UPSERT is PENDING, then INSYNC, and only then does DNS answer the new value', async () => {
    await setInsyncDelay(env, 600);
    const dns = resolver(env);
    const submitted = await route53.send(
      new ChangeResourceRecordSetsCommand(upsert(`${env.SANDBOX_DB_NEW_NAME}.`, 5)),
    );
    expect(submitted.ChangeInfo?.Status).toBe('PENDING');
    // Route 53's servers serve a change once it is INSYNC; until then the old answer stands.
    expect(await dns.resolve4(env.SANDBOX_RECORD_NAME)).toEqual([env.SANDBOX_OLD_DB_HOST]);
    let status = submitted.ChangeInfo?.Status;
    const started = Date.now();
    while (status !== 'INSYNC') {
      expect(Date.now() - started).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 100));
      status = (await route53.send(new GetChangeCommand({ Id: submitted.ChangeInfo!.Id! }))).ChangeInfo
        ?.Status;
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(await dns.resolve4(env.SANDBOX_RECORD_NAME, { ttl: true })).toEqual([
      { address: env.SANDBOX_NEW_DB_HOST, ttl: 5 },
    ]);
    expect(await dns.resolveCname(env.SANDBOX_RECORD_NAME)).toEqual([env.SANDBOX_DB_NEW_NAME]);
  });

  it('CREATE of an existing record fails with InvalidChangeBatch', async () => {
    const input = upsert(`${env.SANDBOX_DB_NEW_NAME}.`);
    input.ChangeBatch!.Changes![0]!.Action = 'CREATE';
    await expect(route53.send(new ChangeResourceRecordSetsCommand(input))).rejects.toMatchObject({
      name: 'InvalidChangeBatch',
      message: expect.stringContaining('already exists'),
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('a batch is all-or-nothing: a DELETE that does not match rejects the whole batch', async () => {
    const before = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId }));
    const err = await route53
      .send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId,
          ChangeBatch: {
            Changes: [
              {
                Action: 'UPSERT',
                ResourceRecordSet: {
                  Name: env.SANDBOX_RECORD_NAME,
                  Type: 'CNAME',
                  TTL: 1,
                  ResourceRecords: [{ Value: env.SANDBOX_DB_NEW_NAME }],
                },
              },
              {
                Action: 'DELETE',
                ResourceRecordSet: {
                  Name: env.SANDBOX_DB_OLD_NAME,
                  Type: 'A',
                  TTL: 60,
                  ResourceRecords: [{ Value: '192.0.2.1' }],
                },
              },
            ],
          },
        }),
      )
      .catch((e) => e);
    expect(err).toMatchObject({
      name: 'InvalidChangeBatch',
      message: expect.stringContaining('do not match'),
    });
    expect(
      (await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId }))).ResourceRecordSets,
    ).toEqual(before.ResourceRecordSets);
  });

  it('unknown zones fail with NoSuchHostedZone (404)', async () => {
    await expect(route53.send(new GetHostedZoneCommand({ Id: 'Z0NOSUCHZONE' }))).rejects.toMatchObject({
      name: 'NoSuchHostedZone',
      $metadata: { httpStatusCode: 404 },
    });
  });

  it('DNS: NXDOMAIN for unknown names, the record TTL, authoritative answers', async () => {
    const dns = resolver(env);
    await expect(dns.resolve4(`nope.${env.SANDBOX_ZONE_NAME.replace(/\.$/, '')}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    expect(await dns.resolve4(env.SANDBOX_DB_NEW_NAME, { ttl: true })).toEqual([
      { address: env.SANDBOX_NEW_DB_HOST, ttl: 60 },
    ]);
    const { default: dnsPacket } = await import('dns-packet');
    const { createSocket } = await import('node:dgram');
    const sock = createSocket('udp4');
    const reply = await new Promise<Buffer>((res) => {
      sock.once('message', res);
      sock.send(
        dnsPacket.encode({
          type: 'query',
          id: 7,
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ type: 'A', name: env.SANDBOX_RECORD_NAME }],
        }),
        Number(env.SANDBOX_DNS_PORT),
        '127.0.0.1',
      );
    });
    sock.close();
    const p = dnsPacket.decode(reply);
    expect(p.flag_aa).toBe(true);
    expect(
      p.answers?.map((a) => [a.type, (a as { ttl?: number }).ttl, (a as { data?: unknown }).data]),
    ).toEqual([
      ['CNAME', 1, env.SANDBOX_DB_OLD_NAME],
      ['A', 60, env.SANDBOX_OLD_DB_HOST],
    ]);
  });
});

describe('sandbox AWS endpoint: RDS', () => {
  it('describes the Aurora cluster and its writer instance (the new server)', async () => {
    const c = (
      await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: env.SANDBOX_RDS_CLUSTER_ID }))
    ).DBClusters?.[0];
    expect(c).toMatchObject({
      Engine: 'aurora-mysql',
      Status: 'available',
      Endpoint: env.SANDBOX_DB_NEW_NAME,
      Port: Number(env.SANDBOX_DB_PORT),
    });
    expect(c?.ReaderEndpoint).toBeTruthy();
    expect(c?.DBClusterMembers?.[0]).toMatchObject({ IsClusterWriter: true });
    const i = (
      await rds.send(
        new DescribeDBInstancesCommand({
          DBInstanceIdentifier: c!.DBClusterMembers![0]!.DBInstanceIdentifier,
        }),
      )
    ).DBInstances?.[0];
    expect(i).toMatchObject({
      DBClusterIdentifier: env.SANDBOX_RDS_CLUSTER_ID,
      DBInstanceStatus: 'available',
      Endpoint: { Address: env.SANDBOX_DB_NEW_NAME },
    });
    await expect(
      rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'nope' })),
    ).rejects.toMatchObject({ name: 'DBClusterNotFoundFault', $metadata: { httpStatusCode: 404 } });
  });
});

describe('sandbox AWS endpoint: faults and call counters', () => {
  afterEach(() => resetSandbox(env));

  it('an injected deny raises the SDK access-denied exception, for the given number of calls', async () => {
    await injectFault(env, { action: 'ec2:RevokeSecurityGroupIngress', mode: 'deny', count: 1 });
    const revoke = () =>
      ec2.send(
        new RevokeSecurityGroupIngressCommand({ GroupId, SecurityGroupRuleIds: ['sgr-0sandbox00000002'] }),
      );
    await expect(revoke()).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
    });
    await expect(revoke()).resolves.toMatchObject({ Return: true });

    await injectFault(env, { action: 'route53:ChangeResourceRecordSets', mode: 'deny' });
    await expect(
      route53.send(new ChangeResourceRecordSetsCommand(upsert(env.SANDBOX_DB_NEW_NAME))),
    ).rejects.toMatchObject({
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    await injectFault(env, { action: 'rds:*', mode: 'deny' });
    await expect(rds.send(new DescribeDBClustersCommand({}))).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('fail answers HTTP 500 and throttle the service throttling error', async () => {
    await injectFault(env, { action: 'ec2:DescribeSecurityGroupRules', mode: 'fail' });
    await expect(rules()).rejects.toMatchObject({
      name: 'InternalError',
      $fault: 'server',
      $metadata: { httpStatusCode: 500 },
    });
    await clearFaults(env);
    await injectFault(env, { action: 'route53:GetChange', mode: 'throttle', count: 1 });
    await expect(route53.send(new GetChangeCommand({ Id: 'C0000' }))).rejects.toMatchObject({
      name: 'Throttling',
    });
    await injectFault(env, { action: 'ec2:*', mode: 'throttle', count: 1 });
    await expect(rules()).rejects.toMatchObject({
      name: 'RequestLimitExceeded',
      $metadata: { httpStatusCode: 503 },
    });
    expect(await rules()).not.toHaveLength(0);
  });

  it('counts calls by action and tells the mutating ones apart', async () => {
    await resetCalls(env);
    await rules();
    await rules();
    await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId }));
    let report = await calls(env);
    expect(report.calls).toEqual({
      'ec2:DescribeSecurityGroupRules': 2,
      'route53:ListResourceRecordSets': 1,
    });
    expect(report.mutatingCalls).toBe(0);
    expect(report.mutating).toEqual(
      expect.arrayContaining(['ec2:RevokeSecurityGroupIngress', 'route53:ChangeResourceRecordSets']),
    );
    await route53.send(new ChangeResourceRecordSetsCommand(upsert(env.SANDBOX_DB_NEW_NAME)));
    report = await calls(env);
    expect(report.calls['route53:ChangeResourceRecordSets']).toBe(1);
    expect(report.mutatingCalls).toBe(1);
    await resetCalls(env);
    expect((await calls(env)).total).toBe(0);
  });
});

describe('sandbox AWS endpoint: the rds profile', () => {
  const reset = (body?: unknown) =>
    fetch(`${env.SANDBOX_ADMIN_URL}/reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  afterEach(async () => {
    expect((await reset({ platform: 'self' })).status).toBe(200);
  });

  it('POST /_sandbox/reset {platform: rds} seeds the RDS → Aurora shape; later resets keep it until self', async () => {
    expect(await (await reset({ platform: 'rds' })).json()).toEqual({ ok: true, platform: 'rds' });
    const old = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'sandbox-rds' })))
      .DBInstances?.[0];
    expect(old).toMatchObject({
      Engine: 'mysql',
      Endpoint: { Address: env.SANDBOX_DB_OLD_NAME },
      VpcSecurityGroups: [
        { VpcSecurityGroupId: GroupId, Status: 'active' },
        { VpcSecurityGroupId: 'sg-0sandbox0000003', Status: 'active' },
      ],
    });
    expect(old?.DBClusterIdentifier).toBeUndefined();
    // The replication path: old's group names new's group (a UserIdGroupPair) on 3306.
    const pair = (await rules()).find(
      (r) => r.ReferencedGroupInfo?.GroupId === env.SANDBOX_NEW_SECURITY_GROUP_ID,
    );
    expect(pair).toMatchObject({ IpProtocol: 'tcp', FromPort: 3306, ToPort: 3306, IsEgress: false });
    // A reset without a body (resetSandbox) keeps the profile.
    expect(await (await reset()).json()).toEqual({ ok: true, platform: 'rds' });
    expect((await reset({ platform: 'aurora' })).status).toBe(400);
    expect(await (await reset({ platform: 'self' })).json()).toEqual({ ok: true, platform: 'self' });
    await expect(
      rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'sandbox-rds' })),
    ).rejects.toMatchObject({ name: 'DBInstanceNotFoundFault' });
  });
});
