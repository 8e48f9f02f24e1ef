// Issue 13: what "needs a human" tells the operator to put back, from the journaled snapshot: the
// reverse of the change (a revoked rule put back, an added one revoked), never the forward change.
import { describe, expect, it } from 'vitest';
import { routeFlip } from '../../../src/steps/aws/route53-flip.js';
import { routeSetTtl } from '../../../src/steps/aws/route53-set-ttl.js';
import { securityGroupRestore } from '../../../src/steps/aws/security-group-restore.js';
import { securityGroupRestrict } from '../../../src/steps/aws/security-group-restrict.js';

const app = { id: 'sgr-1', protocol: 'tcp', fromPort: 3306, toPort: 3306, cidrIpv4: '10.0.0.0/24' };
const admin = { id: 'sgr-2', protocol: 'tcp', fromPort: 3306, toPort: 3306, cidrIpv4: '10.0.5.10/32' };
const ssh = { id: 'sgr-3', protocol: 'tcp', fromPort: 22, toPort: 22, cidrIpv4: '0.0.0.0/0' };

describe('restoreHint (issue 13)', () => {
  it('restrict: put back each revoked rule, revoke each rule the fence added, from the snapshot', () => {
    const p = securityGroupRestrict.params.parse({
      groupId: 'sg-0abc',
      port: 3306,
      allow: ['10.0.5.10/32', '10.0.9.9/32'],
    });
    const snap = { port: 3306, protocol: 'tcp', groups: [{ groupId: 'sg-0abc', rules: [app, admin, ssh] }] };
    expect(securityGroupRestrict.restoreHint!(p, snap, undefined)).toEqual([
      'put back tcp/3306 from 10.0.0.0/24 on sg-0abc (was revoked by the fence)',
      'revoke tcp/3306 from 10.0.9.9/32 (cutover allowlist) on sg-0abc (was added by the fence)',
    ]);
    // The forward wording is what it used to show.
    expect(securityGroupRestrict.describe(p, snap)).toContain(
      'would revoke sg-0abc tcp/3306 from 10.0.0.0/24',
    );
  });

  it('restore: revoke what it authorized, put back what it revoked', () => {
    const p = securityGroupRestore.params.parse({
      groupId: 'sg-0abc',
      port: 3306,
      rules: [{ source: '10.0.0.0/24' }],
    });
    const snap = { port: 3306, protocol: 'tcp', groups: [{ groupId: 'sg-0abc', rules: [admin, ssh] }] };
    expect(securityGroupRestore.restoreHint!(p, snap, undefined)).toEqual([
      'put back tcp/3306 from 10.0.5.10/32 on sg-0abc (was revoked by the restore)',
      'revoke tcp/3306 from 10.0.0.0/24 on sg-0abc (was added by the restore)',
    ]);
  });

  it('flip: point the name back at the journaled record; a created record is deleted', () => {
    const p = routeFlip.params.parse({
      zoneId: 'Z0123',
      name: 'db.shop.internal',
      type: 'CNAME',
      value: 'new.shop.internal',
      resolvers: ['10.0.0.2'],
    });
    const existing = [
      {
        Name: 'db.shop.internal.',
        Type: 'CNAME',
        TTL: 60,
        ResourceRecords: [{ Value: 'old.shop.internal' }],
      },
    ];
    const snap = { zoneId: 'Z0123', name: 'db.shop.internal', type: 'CNAME', existing };
    expect(routeFlip.restoreHint!(p, snap, undefined)).toEqual([
      'point db.shop.internal CNAME in zone Z0123 back at old.shop.internal TTL 60 (was flipped to new.shop.internal)',
    ]);
    expect(routeFlip.restoreHint!(p, { ...snap, existing: [] }, undefined)).toEqual([
      'delete db.shop.internal CNAME in zone Z0123 (the flip created it, pointing at new.shop.internal)',
    ]);
  });

  it('set-ttl: the TTL before the lowering', () => {
    const p = routeSetTtl.params.parse({ zoneId: 'Z0123', name: 'db.shop.internal', type: 'CNAME', ttl: 5 });
    const record = { Name: 'db.shop.internal.', Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: 'x' }] };
    expect(routeSetTtl.restoreHint!(p, { zoneId: 'Z0123', record }, undefined)).toEqual([
      'set the TTL of db.shop.internal CNAME in zone Z0123 back to 300s (was lowered to 5s)',
    ]);
  });
});
