// aws.route53.flip: point the database name at the new server. The record sets at the name are
// journaled first; the new value goes in one all-or-nothing change batch; verify waits for INSYNC
// (bounded polling), then asks the zone's authoritative servers (or listed resolvers) until they all
// answer the new value, then waits out the OLD TTL so answers cached before the flip have expired.
// Undo puts the journaled record sets back exactly and waits for INSYNC.
import { ipFamily as isIP } from '../../util/ip.js';
import { z } from 'zod';
import { route53Adapter } from '../../adapters/aws.js';
import { formatMs, StepError } from '../../errors.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import {
  asRecord,
  type AwsIamNeed,
  budgetOf,
  callOpts,
  ms,
  RecordName,
  RecordType,
  SyncParams,
  waitInsync,
  ZoneId,
} from './common.js';
import {
  cachedTtl,
  changeLine,
  changesToReach,
  concernedRecords,
  desiredRecord,
  displayName,
  type FlipTarget,
  formatRecord,
  fqdn,
  normalizeValue,
  normalizeZoneId,
  type RecordChange,
  type RecordSet,
  recordsEqual,
} from './records.js';
import { changeRecordIam, readRecordIam } from './route53-iam.js';
import { type Lowering, pendingLowering, secondsLeft } from './ttl-history.js';

const Alias = z.lazy(() =>
  z
    .object({
      hostedZoneId: z
        .string()
        .min(1)
        .describe('hosted zone id of the alias target (e.g. the load balancer’s)'),
      dnsName: z.string().min(1),
      evaluateTargetHealth: z.boolean().optional(),
    })
    .strict(),
);

const Params = z.lazy(() =>
  z
    .object({
      zoneId: ZoneId,
      name: RecordName,
      type: RecordType,
      value: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
        .optional()
        .describe(
          'the new value: a host name for CNAME (e.g. the Aurora writer endpoint), addresses for A/AAAA',
        ),
      alias: Alias.optional().describe('make it an alias record instead of a value'),
      ttl: z
        .number()
        .int()
        .min(0)
        .max(2147483647)
        .optional()
        .describe('TTL of the new record in seconds (default: the current TTL)'),
      setIdentifier: z.string().optional().describe('SetIdentifier of a weighted/latency/failover record'),
      resolvers: z
        .array(z.string().min(1))
        .optional()
        .describe(
          'DNS servers ("ip" or "ip:port") to check the answer with; default: the zone’s authoritative name servers. Required for a Route 53 private hosted zone: its VPC resolver (169.254.169.253, or the VPC CIDR base +2), with the run inside an associated VPC',
        ),
      create: z
        .boolean()
        .optional()
        .describe(
          'create the record if the name has none (default false: a flip changes an existing record, so a typo in the name fails instead of creating one)',
        ),
      ...SyncParams,
      resolveInterval: Duration.optional().describe('how often to ask the DNS servers (default 1s)'),
      resolveTimeout: Duration.optional().describe(
        'give up if the servers do not answer the new value within this (default 2m)',
      ),
      waitForCaches: z
        .boolean()
        .optional()
        .describe('wait out the old TTL after the flip so cached answers expire (default true)'),
      maxOldTtl: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe(
          'fail before changing anything if the record’s current TTL is higher (a forgotten aws.route53.set-ttl)',
        ),
    })
    .strict()
    .superRefine((p, c) => {
      if ((p.value === undefined) === (p.alias === undefined))
        c.addIssue({ code: 'custom', path: ['value'], message: 'set exactly one of value and alias' });
      if (p.alias && p.ttl !== undefined)
        c.addIssue({ code: 'custom', path: ['ttl'], message: 'an alias record has no TTL of its own' });
      const values = p.value === undefined ? [] : Array.isArray(p.value) ? p.value : [p.value];
      if (p.type === 'CNAME' && values.length > 1)
        c.addIssue({ code: 'custom', path: ['value'], message: 'a CNAME has exactly one value' });
      values.forEach((v, i) => {
        const path = Array.isArray(p.value) ? ['value', i] : ['value'];
        if (p.type === 'A' && isIP(v) !== 4)
          c.addIssue({ code: 'custom', path, message: `${v} is not an IPv4 address` });
        if (p.type === 'AAAA' && isIP(v) !== 6)
          c.addIssue({ code: 'custom', path, message: `${v} is not an IPv6 address` });
        if (p.type === 'CNAME' && isIP(v))
          c.addIssue({
            code: 'custom',
            path,
            message: `a CNAME points at a host name, not an address (${v}): use type A`,
          });
      });
    }),
);
type P = z.infer<typeof Params>;

export interface FlipSnapshot {
  zoneId: string;
  name: string;
  type: string;
  setIdentifier?: string;
  /** The record sets at the name the flip replaces (same slot, and CNAME vs A/AAAA), as AWS returned them. */
  existing: RecordSet[];
  /** An earlier aws.route53.set-ttl of this record whose old-TTL answers may still be cached. */
  lowered?: Lowering;
}

/** The longest TTL a resolver may still hold an old answer with: the record's, or the pre-lowering one left. */
function oldTtlOf(snap: FlipSnapshot, now = Date.now()): number | undefined {
  const ttl = cachedTtl(snap.existing);
  const left = secondsLeft(snap.lowered, now);
  return ttl === undefined && !left ? undefined : Math.max(ttl ?? 0, left);
}

function loweredNote(snap: FlipSnapshot): string {
  return snap.lowered
    ? ` (lowered from ${snap.lowered.fromTtl}s: answers cached before may live until ${snap.lowered.until})`
    : '';
}

type Outputs = {
  changeId?: string;
  previous: string;
  current: string;
  /** Longest TTL a resolver may have cached the old answer with, in seconds. */
  oldTtl?: number;
  changed: boolean;
};

/** Into an empty slot, CREATE (which fails if someone created it meanwhile) instead of UPSERT. */
function creating(now: RecordSet[], changes: RecordChange[]): RecordChange[] {
  return now.length ? changes : changes.map((c) => (c.Action === 'UPSERT' ? { ...c, Action: 'CREATE' } : c));
}

function requireRecord(p: P, existing: RecordSet[]): void {
  if (!existing.length)
    throw new StepError(
      'RECORD_NOT_FOUND',
      `zone ${normalizeZoneId(p.zoneId)} has no record at ${displayName(p.name)} to flip: check the name and the zone id, or set create: true to create it`,
    );
}

async function withLowering(ctx: StepContext, p: P): Promise<{ lowered?: Lowering }> {
  const journaled = pendingLowering(ctx.runDir, p);
  // A plan has no journal of the steps before: the dry adapter remembers the lowerings it recorded.
  const r53 = await ctx.adapters.use(route53Adapter, undefined);
  const slot = { Name: p.name, Type: p.type, ...(p.setIdentifier ? { SetIdentifier: p.setIdentifier } : {}) };
  const p2 = r53.plannedLowering(p.zoneId, slot);
  const planned = p2 ? { ...p2, runDir: ctx.runDir } : undefined;
  const lowered = [journaled, planned]
    .filter((x): x is Lowering => !!x)
    .sort((a, b) => Date.parse(b.until) - Date.parse(a.until))[0];
  return lowered ? { lowered } : {};
}

function target(p: P): FlipTarget {
  const t: FlipTarget = { name: p.name, type: p.type };
  if (p.value !== undefined) t.values = Array.isArray(p.value) ? p.value : [p.value];
  if (p.alias)
    t.alias = {
      HostedZoneId: p.alias.hostedZoneId,
      DNSName: p.alias.dnsName,
      EvaluateTargetHealth: !!p.alias.evaluateTargetHealth,
    };
  if (p.ttl !== undefined) t.ttl = p.ttl;
  if (p.setIdentifier) t.setIdentifier = p.setIdentifier;
  return t;
}

function label(p: { name: string; type: string; zoneId: string }): string {
  return `${displayName(p.name)} ${p.type} in zone ${normalizeZoneId(p.zoneId)}`;
}

async function concernedNow(
  ctx: StepContext,
  p: { zoneId: string; name: string; type: string; setIdentifier?: string },
): Promise<RecordSet[]> {
  const r53 = await ctx.adapters.use(route53Adapter, undefined);
  return concernedRecords(
    await r53.recordSetsAt(p.zoneId, p.name, callOpts(ctx)),
    p.name,
    p.type,
    p.setIdentifier,
  );
}

function summarize(records: RecordSet[]): string {
  return records.length
    ? records
        .map(
          (r) =>
            `${r.Type} ${r.AliasTarget ? `alias ${displayName(r.AliasTarget.DNSName)}` : (r.ResourceRecords ?? []).map((x) => x.Value).join(', ')}`,
        )
        .join('; ')
    : '(none)';
}

/** Servers checkDns would ask; for a private zone only listed resolvers can answer. */
async function checkServers(ctx: StepContext, p: P): Promise<void> {
  // A routing-policy record answers per query: checkDns skips it, so it needs no servers.
  if (p.setIdentifier) return;
  const r53 = await ctx.adapters.use(route53Adapter, undefined);
  const zone = await r53.hostedZone(p.zoneId, callOpts(ctx));
  if (!p.resolvers?.length) {
    if (zone.privateZone)
      throw new StepError(
        'PRIVATE_ZONE_NEEDS_RESOLVERS',
        `${label(p)}: ${displayName(zone.name)} is a Route 53 private hosted zone (VPC ${zone.vpcs.map((v) => v.id).join(', ') || '?'}): no public name server answers for it, so the flip could not be checked; list resolvers: [the VPC resolver, e.g. 169.254.169.253] and run from inside that VPC`,
      );
    if (!zone.nameServers.length)
      throw new StepError(
        'DNS_NO_SERVERS',
        `${label(p)}: zone ${zone.id} lists no name servers: list resolvers: on the step`,
      );
    return;
  }
  if (!zone.privateZone) return;
  // A resolver outside the VPC answers NXDOMAIN for a private zone: ask for a record it must know.
  const existing = await concernedNow(ctx, p);
  const probe = existing.find((r) => r.Type === p.type && !r.AliasTarget);
  if (!probe) return;
  const dns = await import('../../adapters/dns.js');
  const addrs = await dns.serverAddresses(p.resolvers).catch(() => p.resolvers!);
  const answers = await dns.queryAll(fqdn(p.name), p.type, addrs, 2000);
  const blind = answers.filter((a) => !a.values.length);
  if (blind.length)
    throw new StepError(
      'RESOLVER_CANNOT_SEE_ZONE',
      `${label(p)}: ${blind.map((a) => `${a.server} answers ${a.error ?? 'nothing'}`).join('; ')} for a record the private zone has: that resolver does not serve the zone's VPC; list the VPC resolver and run from inside the VPC`,
    );
}

/** Waits until every DNS server answers the flipped value. */
async function checkDns(ctx: StepContext, p: P, desired: RecordSet): Promise<void> {
  if (desired.SetIdentifier) {
    ctx.log(
      `${label(p)}: a ${desired.SetIdentifier} routing-policy record answers per query; DNS check skipped`,
    );
    return;
  }
  const dns = await import('../../adapters/dns.js');
  let servers = p.resolvers;
  if (!servers?.length) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    servers = (await r53.hostedZone(p.zoneId, callOpts(ctx))).nameServers;
  }
  let addrs: string[];
  try {
    addrs = await dns.serverAddresses(servers);
  } catch (e) {
    throw new StepError(
      'DNS_SERVERS_UNRESOLVABLE',
      `${label(p)}: cannot resolve the name servers ${servers.join(', ')} (${(e as { code?: string }).code ?? (e as Error).message}): list resolvers: [ip:port] on the step`,
    );
  }
  if (!addrs.length)
    throw new StepError(
      'DNS_NO_SERVERS',
      `${label(p)}: no DNS servers to check the flip with: list resolvers: on the step`,
    );
  let expected: string[];
  if (desired.AliasTarget) {
    // The target's addresses: from the same servers when the target is in their zone, else the system resolver.
    const host = desired.AliasTarget.DNSName.replace(/\.$/, '');
    const viaServers = (await dns.queryAll(host, p.type, addrs)).flatMap((a) => a.values);
    const { resolve4, resolve6 } = await import('node:dns/promises');
    const viaSystem = viaServers.length
      ? []
      : await (p.type === 'AAAA' ? resolve6(host) : resolve4(host)).catch(() => [] as string[]);
    expected = [...new Set([...viaServers, ...viaSystem])].map((v) => normalizeValue(p.type, v));
  } else expected = (desired.ResourceRecords ?? []).map((r) => normalizeValue(p.type, r.Value)).sort();
  const want = expected.join(', ');
  await ctx.poll({
    what: `${addrs.join(', ')} to answer ${displayName(p.name)} ${p.type} → ${want || desired.AliasTarget?.DNSName}`,
    timeoutMs: ms(p.resolveTimeout, 120_000),
    intervalMs: ms(p.resolveInterval, 1_000),
    check: async () => {
      const answers = await dns.queryAll(fqdn(p.name), p.type, addrs);
      const ok = answers.every((a) => {
        const got = a.values.map((v) => normalizeValue(p.type, v)).sort();
        // An alias answers the target's current addresses, which rotate: any overlap counts.
        return desired.AliasTarget
          ? got.length > 0 && (!expected.length || got.some((g) => expected.includes(g)))
          : got.join(', ') === want;
      });
      return {
        done: ok,
        status: answers
          .map((a) => `${a.server} → ${a.error ?? (a.values.join(', ') || '(empty)')}`)
          .join('; '),
      };
    },
  });
}

/**
 * Resolvers that cached the old answer just before INSYNC keep it for up to its TTL; those that
 * cached it before an earlier lowering keep it until that lowering's `until`.
 */
async function waitOutTtl(
  ctx: StepContext,
  p: P,
  ttl: number,
  since: number,
  lowered: Lowering | undefined,
): Promise<void> {
  const until = Math.max(since + ttl * 1000, lowered ? Date.parse(lowered.until) : 0);
  const total = until - since;
  const what = lowered && Date.parse(lowered.until) > since + ttl * 1000 ? lowered.fromTtl : ttl;
  for (let left = until - Date.now(); left > 0; left = until - Date.now()) {
    ctx.progress({
      label: `${displayName(p.name)}: waiting out the old TTL (${what}s) so cached answers expire — ${Math.ceil(left / 1000)}s left`,
      // No deadline: reaching the end is success, not giving up; the label counts down instead.
      current: total - left,
      total,
    });
    await ctx.sleep(Math.min(1000, left));
  }
}

function ttlWarning(p: P, oldTtl: number | undefined, budgetMs: number | undefined): string | undefined {
  if (oldTtl === undefined || p.waitForCaches === false) return undefined;
  if (budgetMs !== undefined && oldTtl * 1000 > budgetMs)
    return `${label(p)}: its TTL (${oldTtl}s) exceeds the maintenance budget (${formatMs(budgetMs)}): waiting out cached answers will not fit; lower it ahead of the window with aws.route53.set-ttl`;
  if (budgetMs === undefined && oldTtl > 300)
    return `${label(p)}: its TTL is ${oldTtl}s: the flip will wait that long for cached answers to expire; lower it ahead of the window with aws.route53.set-ttl`;
  return undefined;
}

export const routeFlip = defineKind<P, FlipSnapshot, Outputs>({
  kind: 'aws.route53.flip',
  summary:
    'point a DNS name at the new server: one change batch, INSYNC, DNS answers checked, old TTL waited out',
  params: Params,
  outputs: ['changeId', 'previous', 'current', 'oldTtl', 'changed'],
  validate(p, v) {
    if (v.budgetMs === undefined) return;
    if (p.maxOldTtl !== undefined && p.maxOldTtl * 1000 > v.budgetMs && p.waitForCaches !== false)
      v.issue(
        ['maxOldTtl'],
        `maxOldTtl ${p.maxOldTtl}s exceeds the maintenance budget (${formatMs(v.budgetMs)}): waiting out cached answers may not fit`,
        'warning',
      );
    if (p.ttl !== undefined && p.ttl * 1000 > v.budgetMs)
      v.issue(
        ['ttl'],
        `TTL ${p.ttl}s exceeds the maintenance budget (${formatMs(v.budgetMs)}): a rollback after the flip would leave clients on the new server that long`,
        'warning',
      );
  },
  iam(p): AwsIamNeed[] {
    const r = asRecord(p);
    const type = String(r.type ?? '');
    const types = type === 'CNAME' ? ['CNAME', 'A', 'AAAA'] : [type, 'CNAME'];
    // GetHostedZone tells a private zone, and finds the authoritative servers of a public one.
    const actions = r.create === true ? ['UPSERT', 'DELETE', 'CREATE'] : ['UPSERT', 'DELETE'];
    return [
      ...readRecordIam(r),
      // Read by plan too (preflight), so it is a read need.
      { mode: 'read', actions: ['route53:GetHostedZone'], resources: readRecordIam(r)[0]!.resources! },
      ...changeRecordIam(r, types, actions),
    ];
  },
  describe(p, snap) {
    const t = target(p);
    const newValue = t.alias ? `alias ${t.alias.DNSName}` : (t.values ?? []).join(', ');
    if (!snap)
      return [
        `would upsert ${label(p)} → ${newValue}`,
        'then: wait for INSYNC, check the DNS answers, wait out the old TTL',
      ];
    const desired = desiredRecord(snap.existing, t);
    const changes = creating(snap.existing, changesToReach(snap.existing, [desired]));
    if (!changes.length) return [`would leave ${label(p)} as is: already ${newValue}`];
    const oldTtl = oldTtlOf(snap);
    const lines = changes.map((c) => changeLine(snap.zoneId, c, snap.existing));
    const servers = p.resolvers?.length ? p.resolvers.join(', ') : 'the zone’s name servers';
    lines.push(
      `then: wait for INSYNC (up to ${formatMs(ms(p.syncTimeout, 180_000))}), until ${servers} answer ${newValue}${p.waitForCaches !== false && oldTtl ? `, then wait out the old TTL (${oldTtl}s${loweredNote(snap)})` : ''}`,
    );
    const w = ttlWarning(p, oldTtl, undefined);
    if (w) lines.push(`warning: ${w}`);
    return lines;
  },
  // The zone, the name and the resolvers are known before the run even when the value is not.
  preflightReads: ['zoneId', 'name', 'type', 'setIdentifier', 'resolvers', 'create', 'ttl', 'maxOldTtl'],
  async preflight(ctx, p) {
    await checkServers(ctx, p);
    // Only a flip with create: true makes a record: a missing one is a typo, whatever runs before.
    if (!p.create) requireRecord(p, await concernedNow(ctx, p));
  },
  async snapshot(ctx, p) {
    // Also here, so these checks hold before any change even when the engine calls no preflight.
    await checkServers(ctx, p);
    const existing = await concernedNow(ctx, p);
    if (!p.create) requireRecord(p, existing);
    return {
      zoneId: normalizeZoneId(p.zoneId),
      name: fqdn(p.name),
      type: p.type,
      ...(p.setIdentifier ? { setIdentifier: p.setIdentifier } : {}),
      existing,
      ...(await withLowering(ctx, p)),
    };
  },
  async apply(ctx, p, snap) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    // The target comes from the snapshot (routing policy, default TTL): a re-apply builds the same one.
    const desired = desiredRecord(snap.existing, target(p));
    const oldTtl = oldTtlOf(snap);
    if (p.maxOldTtl !== undefined && oldTtl !== undefined && oldTtl > p.maxOldTtl)
      throw new StepError(
        'TTL_TOO_HIGH',
        snap.lowered && secondsLeft(snap.lowered) > (cachedTtl(snap.existing) ?? 0)
          ? `${label(p)} was lowered from TTL ${snap.lowered.fromTtl}s (in ${snap.lowered.runDir}): resolvers may serve the old answer until ${snap.lowered.until}, ${oldTtl}s from now, above maxOldTtl ${p.maxOldTtl}s: flip after that`
          : `${label(p)} has TTL ${oldTtl}s, above maxOldTtl ${p.maxOldTtl}s: waiting it out would stretch the window; lower it ahead of time with aws.route53.set-ttl`,
      );
    const w = ttlWarning(p, oldTtl, budgetOf(ctx));
    if (w) ctx.warn(w);
    const now = await concernedNow(ctx, p);
    const changes = creating(now, changesToReach(now, [desired]));
    const outputs: Outputs = {
      previous: summarize(snap.existing),
      current: summarize([desired]),
      ...(oldTtl !== undefined ? { oldTtl } : {}),
      changed: changesToReach(snap.existing, [desired]).length > 0,
    };
    if (!changes.length) return outputs;
    const res = await r53.change(snap.zoneId, changes, {
      ...callOpts(ctx),
      before: now,
      comment: `cutover ${ctx.runId} ${ctx.stepId}`,
    });
    return { ...outputs, changeId: res.changeId };
  },
  async verify(ctx, p, snap, out) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    const desired = desiredRecord(snap.existing, target(p));
    let since = Date.now();
    if (out.changeId) {
      await waitInsync(ctx, r53, out.changeId, p, `flip of ${label(p)}`);
      since = Date.now();
    } else {
      const now = await concernedNow(ctx, p);
      if (changesToReach(now, [desired]).length)
        throw new StepError(
          'FLIP_NOT_APPLIED',
          `${label(p)} answers ${summarize(now)}, not ${summarize([desired])}: check for another process editing the zone`,
        );
    }
    await checkDns(ctx, p, desired);
    const unchanged = snap.existing.length === 1 && recordsEqual(snap.existing[0], desired);
    const ttl = cachedTtl(snap.existing) ?? 0;
    if (p.waitForCaches !== false && (ttl || snap.lowered) && !unchanged)
      await waitOutTtl(ctx, p, ttl, since, snap.lowered);
  },
  async isApplied(ctx, p, snap) {
    const desired = desiredRecord(snap.existing, target(p));
    if (changesToReach(await concernedNow(ctx, p), [desired]).length) return false;
    // In place, but the waits after it (INSYNC, DNS, old TTL) may not have finished: do them now.
    await routeFlip.verify!(ctx, p, snap, { previous: '', current: '', changed: true });
    return true;
  },
  restoreHint(p, snap) {
    if (!snap) return [`compare ${label(p)} with your records: its records were not journaled`];
    const to = target(p);
    const flipped = to.alias ? `alias ${to.alias.DNSName}` : (to.values ?? []).join(', ');
    if (!snap.existing.length) return [`delete ${label(snap)} (the flip created it, pointing at ${flipped})`];
    return [
      `point ${label(snap)} back at ${snap.existing.map(formatRecord).join('; ')} (was flipped to ${flipped})`,
    ];
  },
  async undo(ctx, p, snap) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    const now = await concernedNow(ctx, snap);
    const changes = changesToReach(now, snap.existing);
    if (!changes.length) {
      ctx.log(`${label(snap)}: already as before the flip`);
      return;
    }
    const res = await r53.change(snap.zoneId, changes, {
      ...callOpts(ctx),
      before: now,
      comment: `cutover ${ctx.runId} ${ctx.stepId} undo`,
    });
    await waitInsync(ctx, r53, res.changeId, p, `undo of the flip of ${label(snap)}`);
    const ttl = cachedTtl(now);
    ctx.log(
      `${label(snap)}: back to ${summarize(snap.existing)}${ttl ? `; resolvers may answer the flipped value for up to ${ttl}s` : ''}`,
    );
  },
});
