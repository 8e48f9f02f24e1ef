// The sandbox's AWS seed as a function of the platform, the fence model it drives, and the kind
// params that fence an RDS instance's groups. Pure: no endpoint, no MariaDB (those are in
// test/integration/aws/rds-profile.test.ts).
import { describe, expect, it } from 'vitest';
import { handleRoute53 } from '../../../src/sandbox/route53.js';
import {
  type AwsState,
  OLD_EXTRA_SECURITY_GROUP_ID,
  RDS_OLD_INSTANCE_ID,
  seedState,
} from '../../../src/sandbox/aws-state.js';
import {
  APP_SUBNET_CIDR,
  NEW_SECURITY_GROUP_ID,
  SECURITY_GROUP_ID,
  ZONE_ID,
} from '../../../src/sandbox/config.js';
import {
  appSubnetAllowed,
  oldGroupIds,
  replicationAllowed,
  wantedLocks,
} from '../../../src/sandbox/fence.js';
import { securityGroupRestore } from '../../../src/steps/aws/security-group-restore.js';
import { securityGroupRestrict } from '../../../src/steps/aws/security-group-restrict.js';

const seed = (platform: 'self' | 'rds') => seedState({ dbPort: 3306, platform });

/** Drops every 3306 ingress rule of a group except those `keep` accepts, as a restrict would. */
function fence(
  state: AwsState,
  groupId: string,
  keep: (r: { cidrIpv4?: string; referencedGroupId?: string }) => boolean,
) {
  const g = state.groups.find((x) => x.id === groupId)!;
  g.rules = g.rules.filter((r) => r.isEgress || r.fromPort !== 3306 || keep(r));
}

describe('sandbox AWS seed by platform', () => {
  it('self keeps one group on old, no RDS instance for old, and no replication rules', () => {
    const s = seed('self');
    expect(s.platform).toBe('self');
    expect(oldGroupIds(s)).toEqual([SECURITY_GROUP_ID]);
    expect(s.instances.map((i) => i.id)).toEqual(['sandbox-aurora-1']);
    expect(s.groups.flatMap((g) => g.rules).some((r) => r.referencedGroupId)).toBe(false);
  });

  it('rds: old is an RDS instance with two groups, each side lets the other side’s group in on 3306', () => {
    const s = seed('rds');
    const old = s.instances.find((i) => i.id === RDS_OLD_INSTANCE_ID)!;
    expect(old).toMatchObject({
      engine: 'mysql',
      securityGroupIds: [SECURITY_GROUP_ID, OLD_EXTRA_SECURITY_GROUP_ID],
    });
    expect(old.clusterId).toBeUndefined();
    const ref = (from: string, to: string) =>
      s.groups
        .find((g) => g.id === to)!
        .rules.some((r) => !r.isEgress && r.fromPort === 3306 && r.referencedGroupId === from);
    expect(ref(NEW_SECURITY_GROUP_ID, SECURITY_GROUP_ID)).toBe(true);
    expect(ref(SECURITY_GROUP_ID, NEW_SECURITY_GROUP_ID)).toBe(true);
    // The second group lets the app in too: fencing one group is not enough.
    expect(
      s.groups
        .find((g) => g.id === OLD_EXTRA_SECURITY_GROUP_ID)!
        .rules.some((r) => r.cidrIpv4 === APP_SUBNET_CIDR && r.fromPort === 3306),
    ).toBe(true);
    expect(s.clusters[0]!.members).toEqual([
      { instanceId: 'sandbox-aurora-1', writer: true },
      { instanceId: 'sandbox-aurora-2', writer: false },
    ]);
    expect(s.zones[0]!.privateZone).toBe(true);
  });
});

describe('fence model', () => {
  it('M4c: app stays unlocked while any group on old still lets the app subnet in', () => {
    const s = seed('rds');
    fence(s, SECURITY_GROUP_ID, () => false);
    expect(appSubnetAllowed(s)).toBe(true);
    fence(s, OLD_EXTRA_SECURITY_GROUP_ID, () => false);
    expect(appSubnetAllowed(s)).toBe(false);
  });

  it('M4a: rds locks repl when no rule of old’s groups lets new (its group or its address) in', () => {
    const s = seed('rds');
    expect(wantedLocks(s)).toEqual({ app: false, repl: false });
    fence(s, SECURITY_GROUP_ID, (r) => r.referencedGroupId === NEW_SECURITY_GROUP_ID);
    fence(s, OLD_EXTRA_SECURITY_GROUP_ID, () => false);
    expect(wantedLocks(s)).toEqual({ app: true, repl: false });
    fence(s, SECURITY_GROUP_ID, () => false);
    expect(replicationAllowed(s)).toBe(false);
    expect(wantedLocks(s)).toEqual({ app: true, repl: true });
    // An allowlisted /32 of new's address is a path too.
    s.groups[0]!.rules.push({
      id: 'sgr-x',
      groupId: SECURITY_GROUP_ID,
      isEgress: false,
      ipProtocol: 'tcp',
      fromPort: 3306,
      toPort: 3306,
      cidrIpv4: '127.0.0.3/32',
    });
    expect(replicationAllowed(s)).toBe(true);
  });

  it('self keeps its model: repl is never fenced', () => {
    const s = seed('self');
    fence(s, SECURITY_GROUP_ID, () => false);
    expect(wantedLocks(s)).toEqual({ app: true });
  });
});

describe('Route 53 GetHostedZone', () => {
  const get = (s: AwsState) =>
    handleRoute53({ action: 'GetHostedZone', zoneId: ZONE_ID }, new URLSearchParams(), '', s);

  it('a private zone has VPCs and no DelegationSet; a public one has its name servers and no VPCs', () => {
    const s = seed('rds');
    expect(get(s)).toMatch(/<PrivateZone>true<\/PrivateZone>/);
    expect(get(s)).toMatch(/<VPCs><VPC><VPCRegion>us-east-1<\/VPCRegion><VPCId>vpc-/);
    expect(get(s)).not.toMatch(/DelegationSet/);
    s.zones[0]!.privateZone = false;
    expect(get(s)).toMatch(
      /<DelegationSet><NameServers><NameServer>ns-1536\.awsdns-00\.co\.uk<\/NameServer>/,
    );
    expect(get(s)).not.toMatch(/VPCs/);
  });
});

describe('aws.security-group.restrict params', () => {
  const base = { port: 3306, allow: ['10.0.9.0/24'] };
  it('takes exactly one of groupId, groupIds and instance', () => {
    expect(securityGroupRestrict.params.safeParse({ ...base, instance: 'shop-rds' }).success).toBe(true);
    expect(securityGroupRestrict.params.safeParse({ ...base, groupIds: ['sg-1', 'sg-2'] }).success).toBe(
      true,
    );
    expect(securityGroupRestrict.params.safeParse(base).success).toBe(false);
    expect(
      securityGroupRestrict.params.safeParse({ ...base, groupId: 'sg-1', instance: 'shop-rds' }).success,
    ).toBe(false);
    expect(
      securityGroupRestrict.params.safeParse({ ...base, instance: 'shop-rds', keepOpen: {} }).success,
    ).toBe(false);
  });

  it('plans the revokes and allowlist rules of every group in the snapshot', () => {
    const p = securityGroupRestrict.params.parse({ ...base, instance: 'shop-rds' });
    const rule = (id: string, cidr: string) => ({
      id,
      protocol: 'tcp',
      fromPort: 3306,
      toPort: 3306,
      cidrIpv4: cidr,
    });
    const lines = securityGroupRestrict.describe(p, {
      port: 3306,
      protocol: 'tcp',
      groups: [
        { groupId: 'sg-1', rules: [rule('sgr-1', '10.0.0.0/16')] },
        { groupId: 'sg-2', rules: [rule('sgr-2', '10.1.0.0/16'), rule('sgr-3', '10.0.9.0/24')] },
      ],
    });
    expect(lines.filter((l) => l.startsWith('would'))).toEqual([
      'would authorize sg-1 tcp/3306 from 10.0.9.0/24 (cutover allowlist)',
      'would revoke sg-1 tcp/3306 from 10.0.0.0/16',
      'would revoke sg-2 tcp/3306 from 10.1.0.0/16',
    ]);
  });

  it('an allowlist of everyone is an error: it would fence nothing', () => {
    const issues: { severity: string }[] = [];
    securityGroupRestrict.validate!(
      securityGroupRestrict.params.parse({ groupId: 'sg-1', port: 3306, allow: ['0.0.0.0/0'] }),
      {
        pos: () => ({ file: 'x.yaml', line: 1, col: 1 }),
        issue: (_p, _m, severity = 'error') => issues.push({ severity }),
        databases: new Set(),
        budgetMs: undefined,
      },
    );
    expect(issues).toEqual([{ severity: 'error' }]);
  });
});

describe('aws.security-group.restore params', () => {
  it('takes groupId and rules, or groups (a restrict’s outputs.groups), not both', () => {
    const before = [{ protocol: 'tcp', fromPort: 3306, toPort: 3306, cidrIpv4: '10.0.0.0/16' }];
    const ok = (v: unknown) => securityGroupRestore.params.safeParse(v).success;
    expect(ok({ groupId: 'sg-1', port: 3306, rules: before })).toBe(true);
    expect(
      ok({
        port: 3306,
        groups: [
          { groupId: 'sg-1', before },
          { groupId: 'sg-2', before: [] },
        ],
      }),
    ).toBe(true);
    expect(ok({ groupId: 'sg-1', port: 3306, rules: before, groups: [{ groupId: 'sg-2', before }] })).toBe(
      false,
    );
    expect(ok({ groupId: 'sg-1', port: 3306 })).toBe(false);
    expect(ok({ port: 3306 })).toBe(false);
  });
});
