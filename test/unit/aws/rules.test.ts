import { describe, expect, it } from 'vitest';
import {
  canonicalCidr,
  cidrContains,
  formatRule,
  planRestore,
  planRestrict,
  ruleKey,
  ruleProperties,
  type SgRule,
} from '../../../src/steps/aws/rules.js';

const tcp = (port: number, src: Partial<SgRule>, extra: Partial<SgRule> = {}): SgRule => ({
  protocol: 'tcp',
  fromPort: port,
  toPort: port,
  ...src,
  ...extra,
});

describe('CIDRs', () => {
  it('canonicalizes addresses and prefixes', () => {
    expect(canonicalCidr('10.0.5.10')).toBe('10.0.5.10/32');
    expect(canonicalCidr('10.0.5.10/16')).toBe('10.0.0.0/16');
    expect(canonicalCidr('2001:DB8:0:0::1/64')).toBe('2001:db8::/64');
    expect(canonicalCidr('::/0')).toBe('::/0');
    expect(canonicalCidr('10.0.0.0/33')).toBeUndefined();
    expect(canonicalCidr('app-servers')).toBeUndefined();
  });
  it('tells containment within a family', () => {
    expect(cidrContains('10.0.0.0/16', '10.0.5.0/24')).toBe(true);
    expect(cidrContains('10.0.5.0/24', '10.0.0.0/16')).toBe(false);
    expect(cidrContains('10.0.0.0/16', '10.1.0.0/24')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '192.168.1.1/32')).toBe(true);
    expect(cidrContains('2001:db8::/32', '2001:db8:1::/48')).toBe(true);
    expect(cidrContains('0.0.0.0/0', '2001:db8::/32')).toBe(false);
  });
});

describe('planRestrict', () => {
  const rules: SgRule[] = [
    tcp(3306, { id: 'sgr-1', cidrIpv4: '10.0.0.0/16', description: 'app servers' }),
    tcp(3306, { id: 'sgr-2', cidrIpv4: '10.0.5.10/32', description: 'ops box' }),
    tcp(3306, { id: 'sgr-3', referencedGroupId: 'sg-0app' }),
    tcp(3306, { id: 'sgr-4', cidrIpv6: '2001:db8::/32' }),
    tcp(22, { id: 'sgr-5', cidrIpv4: '10.0.0.0/8', description: 'ssh' }),
    { id: 'sgr-6', protocol: 'tcp', fromPort: 3000, toPort: 4000, cidrIpv4: '192.168.0.0/16' },
  ];

  it('revokes every rule on the port outside the allowlist and adds the missing allowlist rules', () => {
    const p = planRestrict(rules, {
      protocol: 'tcp',
      port: 3306,
      allow: [{ source: '10.0.5.10/32' }, { source: '10.9.9.9' }],
      description: 'cutover allowlist',
    });
    expect(p.keep.map((r) => r.id)).toEqual(['sgr-2']);
    expect(p.revoke.map((r) => r.id).sort()).toEqual(['sgr-1', 'sgr-3', 'sgr-4', 'sgr-6']);
    expect(p.add).toEqual([tcp(3306, { cidrIpv4: '10.9.9.9/32', description: 'cutover allowlist' })]);
    // The ssh rule is on another port: untouched.
    expect([...p.keep, ...p.revoke].some((r) => r.id === 'sgr-5')).toBe(false);
    expect(p.wide.map((r) => r.id)).toEqual(['sgr-6']);
  });

  it('keeps rules whose source lies inside an allowed CIDR, and security-group sources by id', () => {
    const p = planRestrict(rules, {
      protocol: 'tcp',
      port: 3306,
      allow: [{ source: '10.0.0.0/8' }, { source: 'sg-0APP' }],
    });
    expect(p.keep.map((r) => r.id).sort()).toEqual(['sgr-1', 'sgr-2', 'sgr-3']);
    expect(p.revoke.map((r) => r.id).sort()).toEqual(['sgr-4', 'sgr-6']);
    // 10.0.0.0/8 itself has no rule yet: added; sg-0app has one: not added.
    expect(p.add.map((r) => r.cidrIpv4 ?? r.referencedGroupId)).toEqual(['10.0.0.0/8']);
  });

  it('treats an all-traffic rule as on the port and as wide', () => {
    const all: SgRule = { id: 'sgr-9', protocol: '-1', fromPort: -1, toPort: -1, cidrIpv4: '0.0.0.0/0' };
    const p = planRestrict([all], { protocol: 'tcp', port: 3306, allow: [] });
    expect(p.revoke).toEqual([all]);
    expect(p.wide).toEqual([all]);
  });

  it('does nothing when only allowlisted sources reach the port', () => {
    const p = planRestrict([rules[1]!], { protocol: 'tcp', port: 3306, allow: [{ source: '10.0.5.10/32' }] });
    expect(p.revoke).toEqual([]);
    expect(p.add).toEqual([]);
  });
});

describe('planRestore', () => {
  const before: SgRule[] = [
    tcp(3306, { id: 'sgr-1', cidrIpv4: '10.0.0.0/16', description: 'app servers' }),
    tcp(3306, { id: 'sgr-2', cidrIpv4: '10.0.5.10/32', description: 'ops box' }),
    tcp(22, { id: 'sgr-5', cidrIpv4: '10.0.0.0/8' }),
  ];
  const onPort = (r: SgRule) => r.protocol === 'tcp' && r.fromPort <= 3306 && 3306 <= r.toPort;

  it('re-creates revoked rules by properties and revokes the added ones', () => {
    const after: SgRule[] = [
      tcp(3306, { id: 'sgr-2', cidrIpv4: '10.0.5.10/32', description: 'ops box' }),
      tcp(3306, { id: 'sgr-7', cidrIpv4: '10.9.9.9/32', description: 'cutover allowlist' }),
      tcp(22, { id: 'sgr-5', cidrIpv4: '10.0.0.0/8' }),
    ];
    const p = planRestore(after, before.filter(onPort), onPort);
    expect(p.add).toEqual([tcp(3306, { cidrIpv4: '10.0.0.0/16', description: 'app servers' })]);
    expect(p.revoke.map((r) => r.id)).toEqual(['sgr-7']);
    expect(p.redescribe).toEqual([]);
  });

  it('matches by properties although ids changed, and puts descriptions back', () => {
    const recreated: SgRule[] = [
      tcp(3306, { id: 'sgr-10', cidrIpv4: '10.0.0.0/16', description: 'app servers' }),
      tcp(3306, { id: 'sgr-11', cidrIpv4: '10.0.5.10/32', description: 'edited' }),
    ];
    const p = planRestore(recreated, before.filter(onPort), onPort);
    expect(p.add).toEqual([]);
    expect(p.revoke).toEqual([]);
    expect(p.redescribe).toEqual([{ rule: recreated[1], description: 'ops box' }]);
  });

  it('is a no-op on its own result (undo twice)', () => {
    const target = before.filter(onPort);
    const p = planRestore(target, target, onPort);
    expect(p.add.length + p.revoke.length + p.redescribe.length).toBe(0);
  });
});

describe('formatting and keys', () => {
  it('renders plan-line rules', () => {
    expect(formatRule('sg-0abc', tcp(3306, { cidrIpv4: '10.0.0.0/16', description: 'app servers' }))).toBe(
      'sg-0abc tcp/3306 from 10.0.0.0/16 (app servers)',
    );
    expect(
      formatRule('sg-0abc', { protocol: '-1', fromPort: -1, toPort: -1, referencedGroupId: 'sg-1' }),
    ).toBe('sg-0abc all traffic from sg-1');
    expect(
      formatRule('sg-0abc', { protocol: '6', fromPort: 1000, toPort: 2000, cidrIpv4: '1.2.3.4/32' }),
    ).toBe('sg-0abc tcp/1000-2000 from 1.2.3.4/32');
  });
  it('keys ignore ids and descriptions but not ports or sources', () => {
    expect(ruleKey(tcp(3306, { id: 'a', cidrIpv4: '10.0.0.0/16', description: 'x' }))).toBe(
      ruleKey(tcp(3306, { id: 'b', cidrIpv4: '10.0.0.0/16' })),
    );
    expect(ruleKey(tcp(3306, { cidrIpv4: '10.0.0.0/16' }))).not.toBe(
      ruleKey(tcp(3307, { cidrIpv4: '10.0.0.0/16' })),
    );
    expect(ruleProperties(tcp(3306, { id: 'a', cidrIpv4: '10.0.5.10/32' }))).toEqual({
      protocol: 'tcp',
      fromPort: 3306,
      toPort: 3306,
      cidrIpv4: '10.0.5.10/32',
    });
  });
});
