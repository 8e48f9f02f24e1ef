import { describe, expect, it } from 'vitest';
import { iamPolicy, widenedResources } from '../../../src/steps/aws/iam-policy.js';

const steps = [
  {
    kind: 'aws.security-group.restrict',
    params: { groupId: 'sg-0abc', port: 3306, allow: ['10.0.5.10/32'] },
  },
  {
    kind: 'aws.route53.set-ttl',
    params: { zoneId: '/hostedzone/Z0123', name: 'db.shop.internal', type: 'CNAME', ttl: 5 },
  },
  {
    kind: 'aws.route53.flip',
    params: {
      zoneId: 'Z0123',
      name: 'DB.shop.internal.',
      type: 'CNAME',
      value: '${steps.rds.outputs.writerEndpoint}',
      resolvers: ['10.0.0.2'],
    },
  },
  { kind: 'aws.rds.describe', params: { cluster: 'shop-aurora', region: 'eu-west-1' } },
  { kind: 'shell.run', params: { command: 'true' } },
];

describe('iamPolicy', () => {
  it('gives the plan only reads, scoped to the resources the runbook names', () => {
    const doc = iamPolicy(steps, 'plan');
    expect(doc.Version).toBe('2012-10-17');
    expect(doc.Statement).toEqual([
      {
        Sid: 'CutoverPlan1',
        Effect: 'Allow',
        // DescribeSecurityGroups: a restrict of a group that does not exist fails before any change.
        Action: ['ec2:DescribeSecurityGroupRules', 'ec2:DescribeSecurityGroups'],
        Resource: ['*'],
      },
      {
        Sid: 'CutoverPlan2',
        Effect: 'Allow',
        Action: ['rds:DescribeDBClusters'],
        Resource: ['arn:aws:rds:eu-west-1:*:cluster:shop-aurora'],
      },
      {
        Sid: 'CutoverPlan3',
        Effect: 'Allow',
        Action: ['rds:DescribeDBInstances'],
        Resource: ['arn:aws:rds:eu-west-1:*:db:*'],
      },
      {
        Sid: 'CutoverPlan4',
        Effect: 'Allow',
        // GetHostedZone: the flip tells a private zone (C3) even with resolvers listed.
        Action: ['route53:GetHostedZone', 'route53:ListResourceRecordSets'],
        Resource: ['arn:aws:route53:::hostedzone/Z0123'],
      },
    ]);
    const all = doc.Statement.flatMap((s) => s.Action);
    for (const write of [
      'ec2:RevokeSecurityGroupIngress',
      'ec2:AuthorizeSecurityGroupIngress',
      'route53:ChangeResourceRecordSets',
    ])
      expect(all).not.toContain(write);
  });

  it('adds the writes for a run, with ARNs and the record-name condition', () => {
    const doc = iamPolicy(steps, 'run');
    const find = (action: string) => doc.Statement.filter((s) => s.Action.includes(action));
    expect(find('ec2:RevokeSecurityGroupIngress')).toEqual([
      {
        Sid: expect.stringMatching(/^CutoverRun\d+$/),
        Effect: 'Allow',
        Action: [
          'ec2:AuthorizeSecurityGroupIngress',
          'ec2:ModifySecurityGroupRules',
          'ec2:RevokeSecurityGroupIngress',
        ],
        Resource: ['arn:aws:ec2:*:*:security-group/sg-0abc'],
      },
    ]);
    const change = find('route53:ChangeResourceRecordSets');
    // set-ttl and flip differ in the actions and types they may change: two statements, both on the zone and the name.
    expect(change).toHaveLength(2);
    for (const s of change) {
      expect(s.Resource).toEqual(['arn:aws:route53:::hostedzone/Z0123']);
      expect(
        s.Condition?.['ForAllValues:StringEquals']?.['route53:ChangeResourceRecordSetsNormalizedRecordNames'],
      ).toEqual(['db.shop.internal']);
    }
    expect(
      change.map(
        (s) => s.Condition!['ForAllValues:StringEquals']!['route53:ChangeResourceRecordSetsActions'],
      ),
    ).toContainEqual(['UPSERT']);
    expect(find('route53:GetChange')[0]?.Resource).toEqual(['arn:aws:route53:::change/*']);
    // The flip never sends CREATE unless the runbook says create: true (issue 13).
    for (const s of change)
      expect(
        s.Condition!['ForAllValues:StringEquals']!['route53:ChangeResourceRecordSetsActions'],
      ).not.toContain('CREATE');
    expect(new Set(doc.Statement.map((s) => s.Sid)).size).toBe(doc.Statement.length);
  });

  it('falls back to * for resources only known at run time', () => {
    const doc = iamPolicy(
      [
        {
          kind: 'aws.security-group.restrict',
          params: { groupId: '${steps.x.outputs.sg}', port: 3306, allow: [] },
        },
      ],
      'run',
    );
    expect(doc.Statement.find((s) => s.Action.includes('ec2:RevokeSecurityGroupIngress'))?.Resource).toEqual([
      '*',
    ]);
  });

  it('M4c: a restrict of every group of an instance reads the instance (and keepOpen’s cluster) and changes groups it cannot name', () => {
    const doc = iamPolicy(
      [
        {
          kind: 'aws.security-group.restrict',
          params: {
            instance: 'shop-rds',
            port: 3306,
            allow: ['10.0.9.0/24'],
            keepOpen: { cluster: 'shop-aurora' },
            region: 'eu-west-1',
          },
        },
      ],
      'run',
    );
    const find = (action: string) => doc.Statement.filter((s) => s.Action.includes(action));
    // keepOpen's cluster members are not named by the runbook: db:* covers shop-rds as well.
    expect(find('rds:DescribeDBInstances')[0]?.Resource).toEqual(['arn:aws:rds:eu-west-1:*:db:*']);
    const alone = iamPolicy(
      [
        {
          kind: 'aws.security-group.restrict',
          params: { instance: 'shop-rds', port: 3306, allow: [], region: 'eu-west-1' },
        },
      ],
      'plan',
    );
    expect(alone.Statement.find((s) => s.Action.includes('rds:DescribeDBInstances'))?.Resource).toEqual([
      'arn:aws:rds:eu-west-1:*:db:shop-rds',
    ]);
    expect(find('rds:DescribeDBClusters')[0]?.Resource).toEqual([
      'arn:aws:rds:eu-west-1:*:cluster:shop-aurora',
    ]);
    expect(find('ec2:RevokeSecurityGroupIngress')[0]?.Resource).toEqual(['*']);
    expect(find('ec2:DescribeSecurityGroups')).toHaveLength(1);
  });

  it('a restore of ${steps.x.outputs.groups} (known at run time) widens to * instead of failing', () => {
    const doc = iamPolicy(
      [
        {
          kind: 'aws.security-group.restore',
          params: { groups: '${steps.fence.outputs.groups}', port: 3306 },
        },
      ],
      'run',
    );
    expect(
      doc.Statement.find((s) => s.Action.includes('ec2:AuthorizeSecurityGroupIngress'))?.Resource,
    ).toEqual(['*']);
  });

  it('issue 13: a wildcard record name is escaped in the condition as Route 53 normalizes it (\\052)', () => {
    const doc = iamPolicy(
      [
        {
          kind: 'aws.route53.set-ttl',
          params: { zoneId: 'Z1', name: '*.Shop.internal.', type: 'A', ttl: 5 },
        },
      ],
      'run',
    );
    const change = doc.Statement.find((s) => s.Action.includes('route53:ChangeResourceRecordSets'));
    expect(
      change?.Condition?.['ForAllValues:StringEquals']?.[
        'route53:ChangeResourceRecordSetsNormalizedRecordNames'
      ],
    ).toEqual(['\\052.shop.internal']);
  });

  it('issue 13: says which steps widen to Resource "*" (an id only known at run time), and none when all are named', () => {
    expect(
      widenedResources(
        [
          {
            id: 'fence',
            kind: 'aws.security-group.restrict',
            params: { groupId: '${steps.x.outputs.sg}', port: 3306, allow: [] },
          },
          {
            id: 'ok',
            kind: 'aws.security-group.restrict',
            params: { groupId: 'sg-0abc', port: 3306, allow: [] },
          },
        ],
        'run',
      ),
    ).toEqual([
      'step fence [aws.security-group.restrict]: ec2:AuthorizeSecurityGroupIngress, ec2:ModifySecurityGroupRules, ec2:RevokeSecurityGroupIngress on Resource "*": the runbook does not name the resource before the run (a step output, an unset variable, or groups found on an instance)',
    ]);
    expect(widenedResources(steps, 'run')).toEqual([]);
  });
});
