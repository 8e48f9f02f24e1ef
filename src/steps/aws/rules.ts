// Security-group rule logic, pure so it can be unit-tested: which ingress rules a restrict revokes,
// which allowlist rules it adds, and how a rule set is put back. Re-created rules get new ids, so
// rules are matched by their properties (protocol, ports, source); ids are only used to revoke.
import { ipFamily as isIP } from '../../util/ip.js';

/** One ingress rule, as plain JSON (journaled in snapshots and outputs). */
export interface SgRule {
  /** sgr-... when the rule exists; absent for a rule still to be created. */
  id?: string;
  protocol: string;
  /** -1 for "all traffic" and for ICMP "any". */
  fromPort: number;
  toPort: number;
  cidrIpv4?: string;
  cidrIpv6?: string;
  referencedGroupId?: string;
  /** Owner account of a referenced group in another account (peering). */
  referencedUserId?: string;
  prefixListId?: string;
  description?: string;
}

/** An allowlist entry: a CIDR (IPv4/IPv6), a security group id or a prefix list id. */
export interface AllowEntry {
  source: string;
  description?: string;
}

const PROTOCOL_NAMES: Record<string, string> = {
  '6': 'tcp',
  '17': 'udp',
  '1': 'icmp',
  '58': 'icmpv6',
  all: '-1',
};

export function normalizeProtocol(p: string | undefined): string {
  const s = (p ?? '-1').toLowerCase();
  return PROTOCOL_NAMES[s] ?? s;
}

/** "10.0.5.10" → "10.0.5.10/32"; host bits cleared; IPv6 lower-cased and expanded-then-compressed. */
export function canonicalCidr(s: string): string | undefined {
  const [addr, bitsText, ...rest] = s.trim().split('/');
  if (!addr || rest.length) return undefined;
  const family = isIP(addr);
  if (!family) return undefined;
  const max = family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : Number(bitsText);
  if (
    !Number.isInteger(bits) ||
    bits < 0 ||
    bits > max ||
    (bitsText !== undefined && !/^\d+$/.test(bitsText))
  )
    return undefined;
  const n = family === 4 ? ipv4ToBig(addr) : ipv6ToBig(addr);
  const masked = bits === 0 ? 0n : (n >> BigInt(max - bits)) << BigInt(max - bits);
  return `${family === 4 ? bigToIpv4(masked) : bigToIpv6(masked)}/${bits}`;
}

function ipv4ToBig(a: string): bigint {
  return a.split('.').reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n);
}

function bigToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

function ipv6ToBig(a: string): bigint {
  let s = a.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = ipv4ToBig(v4[1]!);
    s = `${s.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(Number.parseInt(g || '0', 16)), 0n);
}

function bigToIpv6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt((7 - i) * 16)) & 0xffffn));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Is `inner` inside `outer` (same family)? */
export function cidrContains(outer: string, inner: string): boolean {
  const o = canonicalCidr(outer);
  const i = canonicalCidr(inner);
  if (!o || !i) return false;
  const [oa, ob] = o.split('/') as [string, string];
  const [ia, ib] = i.split('/') as [string, string];
  const fam = isIP(oa);
  if (fam !== isIP(ia) || Number(ib) < Number(ob)) return false;
  const max = fam === 4 ? 32 : 128;
  const shift = BigInt(max - Number(ob));
  const on = fam === 4 ? ipv4ToBig(oa) : ipv6ToBig(oa);
  const inn = fam === 4 ? ipv4ToBig(ia) : ipv6ToBig(ia);
  return on >> shift === inn >> shift;
}

/** Turns an allowlist string into the rule fields of its source, or undefined when it is not one. */
export function sourceFields(
  source: string,
): Pick<SgRule, 'cidrIpv4' | 'cidrIpv6' | 'referencedGroupId' | 'prefixListId'> | undefined {
  const s = source.trim();
  if (/^sg-[0-9a-z]+$/i.test(s)) return { referencedGroupId: s.toLowerCase() };
  if (/^pl-[0-9a-z]+$/i.test(s)) return { prefixListId: s.toLowerCase() };
  const c = canonicalCidr(s);
  if (!c) return undefined;
  return isIP(c.split('/')[0]!) === 4 ? { cidrIpv4: c } : { cidrIpv6: c };
}

/** The rule's source as one canonical string. */
export function ruleSource(r: SgRule): string {
  if (r.cidrIpv4) return canonicalCidr(r.cidrIpv4) ?? r.cidrIpv4;
  if (r.cidrIpv6) return canonicalCidr(r.cidrIpv6) ?? r.cidrIpv6.toLowerCase();
  if (r.referencedGroupId) return r.referencedGroupId.toLowerCase();
  if (r.prefixListId) return r.prefixListId.toLowerCase();
  return '?';
}

/** Identity by properties (not id, not description): what AWS itself treats as a duplicate. */
export function ruleKey(r: SgRule): string {
  const p = normalizeProtocol(r.protocol);
  const ports = p === '-1' ? '' : `${r.fromPort}-${r.toPort}`;
  return `${p}|${ports}|${ruleSource(r)}`;
}

export function coversPort(r: SgRule, protocol: string, port: number): boolean {
  const p = normalizeProtocol(r.protocol);
  if (p === '-1') return true;
  return p === normalizeProtocol(protocol) && r.fromPort <= port && port <= r.toPort;
}

/** Does the rule open more than the one port (a range, or all traffic)? */
export function isWide(r: SgRule): boolean {
  return normalizeProtocol(r.protocol) === '-1' || r.fromPort !== r.toPort;
}

export function formatPorts(r: SgRule): string {
  const p = normalizeProtocol(r.protocol);
  if (p === '-1') return 'all traffic';
  if (p === 'icmp' || p === 'icmpv6')
    return r.fromPort === -1 ? p : `${p} type ${r.fromPort} code ${r.toPort}`;
  return r.fromPort === r.toPort ? `${p}/${r.fromPort}` : `${p}/${r.fromPort}-${r.toPort}`;
}

/** "sg-0abc tcp/3306 from 10.0.0.0/16 (app servers)" */
export function formatRule(groupId: string, r: SgRule): string {
  return `${groupId} ${formatPorts(r)} from ${ruleSource(r)}${r.description ? ` (${r.description})` : ''}`;
}

export function sortRules(rules: SgRule[]): SgRule[] {
  return [...rules].sort(
    (a, b) => ruleKey(a).localeCompare(ruleKey(b)) || (a.id ?? '').localeCompare(b.id ?? ''),
  );
}

/** Properties only, in a stable shape: what tests and undo compare. */
export function ruleProperties(r: SgRule): Omit<SgRule, 'id'> {
  const out: SgRule = { protocol: normalizeProtocol(r.protocol), fromPort: r.fromPort, toPort: r.toPort };
  const src = sourceFields(ruleSource(r));
  Object.assign(out, src ?? {});
  if (r.referencedUserId) out.referencedUserId = r.referencedUserId;
  if (r.description) out.description = r.description;
  return out;
}

export interface RestrictPlan {
  /** Rules on the port whose source is allowlisted: left alone. */
  keep: SgRule[];
  /** Rules on the port from anywhere else, sorted. */
  revoke: SgRule[];
  /** Allowlist entries with no rule yet, as rules to create, sorted. */
  add: SgRule[];
  /** Revoke candidates that also open other ports (ranges, all traffic): revoking them cuts more. */
  wide: SgRule[];
}

function allows(entry: AllowEntry, r: SgRule): boolean {
  const f = sourceFields(entry.source);
  if (!f) return false;
  if (f.cidrIpv4 && r.cidrIpv4) return cidrContains(f.cidrIpv4, r.cidrIpv4);
  if (f.cidrIpv6 && r.cidrIpv6) return cidrContains(f.cidrIpv6, r.cidrIpv6);
  if (f.referencedGroupId) return r.referencedGroupId?.toLowerCase() === f.referencedGroupId;
  if (f.prefixListId) return r.prefixListId?.toLowerCase() === f.prefixListId;
  return false;
}

/**
 * Rules on `port` from a source inside the allowlist stay (a /24 inside an allowed /16 opens nothing
 * beyond it); every other rule on the port is revoked; each allowlist entry without a rule of exactly
 * its source gets one for the port alone.
 */
export function planRestrict(
  current: SgRule[],
  o: { protocol: string; port: number; allow: AllowEntry[]; description?: string },
): RestrictPlan {
  const onPort = current.filter((r) => coversPort(r, o.protocol, o.port));
  const keep = onPort.filter((r) => o.allow.some((e) => allows(e, r)));
  const revoke = onPort.filter((r) => !keep.includes(r));
  const add: SgRule[] = [];
  const seen = new Set<string>();
  for (const e of o.allow) {
    const f = sourceFields(e.source);
    if (!f) continue;
    const rule: SgRule = { protocol: normalizeProtocol(o.protocol), fromPort: o.port, toPort: o.port, ...f };
    const src = ruleSource(rule);
    if (seen.has(src) || keep.some((r) => ruleSource(r) === src)) continue;
    seen.add(src);
    const description = e.description ?? o.description;
    if (description) rule.description = description;
    add.push(rule);
  }
  return {
    keep: sortRules(keep),
    revoke: sortRules(revoke),
    add: sortRules(add),
    wide: sortRules(revoke.filter(isWide)),
  };
}

export interface RestorePlan {
  /** Rules of the target set that are missing: created again (new ids). */
  add: SgRule[];
  /** Rules in scope that are not in the target set: revoked by id. */
  revoke: SgRule[];
  /** Rules present by properties whose description differs: put back with ModifySecurityGroupRules. */
  redescribe: { rule: SgRule; description: string | undefined }[];
}

/**
 * Makes the rules in scope (those on the port, plus any with the key of a target rule) equal to
 * `target` by properties. Running it on its own result is a no-op, so undo is safe to repeat.
 */
export function planRestore(
  current: SgRule[],
  target: SgRule[],
  inScope: (r: SgRule) => boolean,
): RestorePlan {
  const want = new Map<string, SgRule>();
  for (const r of target) want.set(ruleKey(r), r);
  const have = new Map<string, SgRule>();
  for (const r of current) if (inScope(r) || want.has(ruleKey(r))) have.set(ruleKey(r), r);
  const add = [...want.entries()].filter(([k]) => !have.has(k)).map(([, r]) => withoutId(r));
  const revoke = [...have.entries()].filter(([k]) => !want.has(k)).map(([, r]) => r);
  const redescribe: RestorePlan['redescribe'] = [];
  for (const [k, r] of have) {
    const w = want.get(k);
    if (w && (w.description ?? '') !== (r.description ?? ''))
      redescribe.push({ rule: r, description: w.description });
  }
  return { add: sortRules(add), revoke: sortRules(revoke), redescribe };
}

function withoutId(r: SgRule): SgRule {
  const { id: _id, ...rest } = r;
  return rest;
}

/** The differences between two rule sets by properties (descriptions included), for messages. */
export function diffRuleSets(actual: SgRule[], expected: SgRule[]): { missing: SgRule[]; extra: SgRule[] } {
  const sig = (r: SgRule) => `${ruleKey(r)}|${r.description ?? ''}`;
  const a = new Set(actual.map(sig));
  const e = new Set(expected.map(sig));
  return { missing: expected.filter((r) => !a.has(sig(r))), extra: actual.filter((r) => !e.has(sig(r))) };
}
