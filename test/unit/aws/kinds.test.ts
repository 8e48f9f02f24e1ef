import { describe, expect, it } from 'vitest';
import { awsKinds } from '../../../src/steps/aws/index.js';
import { routeFlip } from '../../../src/steps/aws/route53-flip.js';
import { securityGroupRestrict } from '../../../src/steps/aws/security-group-restrict.js';
import type { ValidateContext } from '../../../src/engine/types.js';

function validate(
  kind: { validate?: (p: any, v: ValidateContext) => void },
  params: unknown,
  budgetMs?: number,
) {
  const issues: { path: (string | number)[]; message: string; severity: string }[] = [];
  kind.validate?.(params, {
    pos: () => ({ file: 'x.yaml', line: 1, col: 1 }),
    issue: (path, message, severity = 'error') => issues.push({ path, message, severity }),
    databases: new Set(),
    budgetMs,
  });
  return issues;
}

describe('AWS kinds', () => {
  it('registers every kind with an iam() and area.verb-noun names', () => {
    expect(awsKinds.map((k) => k.kind).sort()).toEqual([
      'aws.rds.describe',
      'aws.rds.wait',
      'aws.route53.flip',
      'aws.route53.set-ttl',
      'aws.security-group.restore',
      'aws.security-group.restrict',
    ]);
    for (const k of awsKinds) expect(typeof k.iam).toBe('function');
  });

  it('restrict plans the exact rules it would authorize and revoke, and warns that connections survive', () => {
    const p = securityGroupRestrict.params.parse({
      groupId: 'sg-0abc',
      port: 3306,
      allow: ['10.0.5.10/32', { source: 'sg-0def', description: 'bastion' }],
    });
    const lines = securityGroupRestrict.describe(p, {
      groupId: 'sg-0abc',
      port: 3306,
      protocol: 'tcp',
      rules: [
        {
          id: 'sgr-1',
          protocol: 'tcp',
          fromPort: 3306,
          toPort: 3306,
          cidrIpv4: '10.0.0.0/16',
          description: 'app servers',
        },
        { id: 'sgr-2', protocol: 'tcp', fromPort: 3306, toPort: 3306, cidrIpv4: '10.0.5.10/32' },
        { id: 'sgr-3', protocol: 'tcp', fromPort: 22, toPort: 22, cidrIpv4: '0.0.0.0/0' },
      ],
    });
    expect(lines).toEqual([
      'would authorize sg-0abc tcp/3306 from sg-0def (bastion)',
      'would revoke sg-0abc tcp/3306 from 10.0.0.0/16 (app servers)',
      'note: existing connections survive a security-group revoke (tracked connections stay open): pair this step with mysql.connections.drain',
    ]);
  });

  it('flip plans the record before → after and rejects inconsistent params', () => {
    const p = routeFlip.params.parse({
      zoneId: 'Z1',
      name: 'db.sandbox.internal',
      type: 'A',
      value: '127.0.0.3',
      resolvers: ['127.0.0.1:10053'],
    });
    const lines = routeFlip.describe(p, {
      zoneId: 'Z1',
      name: 'db.sandbox.internal.',
      type: 'A',
      existing: [
        { Name: 'db.sandbox.internal.', Type: 'A', TTL: 2, ResourceRecords: [{ Value: '127.0.0.2' }] },
      ],
    });
    expect(lines[0]).toBe(
      'would upsert db.sandbox.internal A in zone Z1 (127.0.0.2 TTL 2 → 127.0.0.3 TTL 2)',
    );
    expect(lines[1]).toMatch(
      /^then: wait for INSYNC .*127\.0\.0\.1:10053 answer 127\.0\.0\.3, then wait out the old TTL \(2s\)$/,
    );
    expect(
      routeFlip.params.safeParse({ zoneId: 'Z1', name: 'x', type: 'A', value: 'db.example.com' }).success,
    ).toBe(false);
    expect(
      routeFlip.params.safeParse({
        zoneId: 'Z1',
        name: 'x',
        type: 'CNAME',
        value: ['a.example', 'b.example'],
      }).success,
    ).toBe(false);
    expect(routeFlip.params.safeParse({ zoneId: 'Z1', name: 'x', type: 'A' }).success).toBe(false);
  });

  it('warns at validation when a known TTL exceeds the maintenance budget', () => {
    const ttlKind = awsKinds.find((k) => k.kind === 'aws.route53.set-ttl')!;
    expect(validate(ttlKind, { zoneId: 'Z1', name: 'x', type: 'A', ttl: 3600 }, 600_000)).toEqual([
      {
        path: ['ttl'],
        severity: 'warning',
        message: expect.stringContaining('TTL 3600s exceeds the maintenance budget (10m)'),
      },
    ]);
    expect(validate(ttlKind, { zoneId: 'Z1', name: 'x', type: 'A', ttl: 5 }, 600_000)).toEqual([]);
    expect(
      validate(
        routeFlip,
        { zoneId: 'Z1', name: 'x', type: 'A', value: '1.2.3.4', maxOldTtl: 900 },
        600_000,
      )[0]?.path,
    ).toEqual(['maxOldTtl']);
  });
});
