// Route 53 record-set logic, pure: which record sets a flip replaces, the change batch that does it,
// and the batch that puts the snapshot back exactly. Field names follow the Route 53 API so a
// snapshot is the record set as AWS returned it (plain JSON, journaled).

export interface AliasTarget {
  HostedZoneId: string;
  DNSName: string;
  EvaluateTargetHealth: boolean;
}

export interface RecordSet {
  Name: string;
  Type: string;
  TTL?: number;
  ResourceRecords?: { Value: string }[];
  AliasTarget?: AliasTarget;
  SetIdentifier?: string;
  Weight?: number;
  Region?: string;
  Failover?: string;
  GeoLocation?: Record<string, string>;
  MultiValueAnswer?: boolean;
  HealthCheckId?: string;
  TrafficPolicyInstanceId?: string;
  CidrRoutingConfig?: Record<string, string>;
  GeoProximityLocation?: Record<string, unknown>;
}

export interface RecordChange {
  Action: 'CREATE' | 'DELETE' | 'UPSERT';
  ResourceRecordSet: RecordSet;
}

/** Routing-policy fields: kept as they were when a flip changes only the value. */
const ROUTING_FIELDS = [
  'SetIdentifier',
  'Weight',
  'Region',
  'Failover',
  'GeoLocation',
  'MultiValueAnswer',
  'HealthCheckId',
  'CidrRoutingConfig',
  'GeoProximityLocation',
] as const;

/** Lower-case, one trailing dot, Route 53's octal escapes decoded ("\052" is "*"). */
export function fqdn(name: string): string {
  const s = name
    .trim()
    .replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
    .toLowerCase();
  return s.endsWith('.') ? s : `${s}.`;
}

export function displayName(name: string): string {
  return fqdn(name).replace(/\.$/, '');
}

export function normalizeZoneId(id: string): string {
  return id.replace(/^\/?hostedzone\//, '');
}

/** Values compared the way DNS compares them: host names without case or trailing dot. */
export function normalizeValue(type: string, v: string): string {
  if (type === 'CNAME' || type === 'NS' || type === 'PTR') return v.trim().toLowerCase().replace(/\.$/, '');
  if (type === 'AAAA') return v.trim().toLowerCase();
  return v.trim();
}

export function recordValues(r: RecordSet): string[] {
  return (r.ResourceRecords ?? []).map((x) => x.Value);
}

/** "127.0.0.2 TTL 60", "a.example, b.example TTL 300", "alias dualstack.x.elb.amazonaws.com (zone Z35...)" */
export function formatRecord(r: RecordSet | undefined): string {
  if (!r) return '(none)';
  const routing = r.SetIdentifier
    ? ` [${r.SetIdentifier}${r.Weight !== undefined ? ` weight ${r.Weight}` : ''}]`
    : '';
  if (r.AliasTarget)
    return `alias ${displayName(r.AliasTarget.DNSName)} (zone ${r.AliasTarget.HostedZoneId})${routing}`;
  const values = recordValues(r).map((v) => (r.Type === 'CNAME' ? v.replace(/\.$/, '') : v));
  return `${values.join(', ')} TTL ${r.TTL ?? '?'}${routing}`;
}

/** A record set with sorted values and normalized names, for equality and stable JSON. */
export function canonicalRecord(r: RecordSet): RecordSet {
  const out: RecordSet = { Name: fqdn(r.Name), Type: r.Type };
  if (r.TTL !== undefined && !r.AliasTarget) out.TTL = r.TTL;
  if (r.ResourceRecords?.length)
    out.ResourceRecords = [...r.ResourceRecords]
      .map((x) => ({ Value: normalizeValue(r.Type, x.Value) }))
      .sort((a, b) => a.Value.localeCompare(b.Value));
  if (r.AliasTarget)
    out.AliasTarget = {
      HostedZoneId: r.AliasTarget.HostedZoneId,
      DNSName: fqdn(r.AliasTarget.DNSName),
      EvaluateTargetHealth: !!r.AliasTarget.EvaluateTargetHealth,
    };
  for (const f of ROUTING_FIELDS) if (r[f] !== undefined && r[f] !== null) (out as any)[f] = r[f];
  if (r.TrafficPolicyInstanceId) out.TrafficPolicyInstanceId = r.TrafficPolicyInstanceId;
  return out;
}

export function recordsEqual(a: RecordSet | undefined, b: RecordSet | undefined): boolean {
  if (!a || !b) return a === b;
  return stableJson(canonicalRecord(a)) === stableJson(canonicalRecord(b));
}

export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** Same record set slot: name, type and routing identity. */
export function sameSlot(a: RecordSet, b: RecordSet): boolean {
  return (
    fqdn(a.Name) === fqdn(b.Name) && a.Type === b.Type && (a.SetIdentifier ?? '') === (b.SetIdentifier ?? '')
  );
}

/**
 * The record sets at a name that a record of `type` (and set identifier) replaces or collides with:
 * the same slot, and — since a CNAME cannot share its name with other data — CNAME vs A/AAAA.
 */
export function concernedRecords(
  atName: RecordSet[],
  name: string,
  type: string,
  setIdentifier?: string,
): RecordSet[] {
  return atName.filter((r) => {
    if (fqdn(r.Name) !== fqdn(name)) return false;
    if (r.Type === type) return (r.SetIdentifier ?? '') === (setIdentifier ?? '');
    if (type === 'CNAME') return r.Type === 'A' || r.Type === 'AAAA' || r.Type === 'CNAME';
    if (type === 'A' || type === 'AAAA') return r.Type === 'CNAME';
    return false;
  });
}

export interface FlipTarget {
  name: string;
  type: 'A' | 'AAAA' | 'CNAME';
  values?: string[];
  alias?: AliasTarget;
  ttl?: number;
  setIdentifier?: string;
}

/** The record set after the flip: the new value, with the old record's routing policy kept. */
export function desiredRecord(concerned: RecordSet[], t: FlipTarget, defaultTtl = 60): RecordSet {
  const same = concerned.find((r) => r.Type === t.type);
  const r: RecordSet = { Name: same?.Name ?? fqdn(t.name), Type: t.type };
  if (t.alias) r.AliasTarget = { ...t.alias, EvaluateTargetHealth: !!t.alias.EvaluateTargetHealth };
  else {
    r.TTL = t.ttl ?? same?.TTL ?? concerned.find((x) => x.TTL !== undefined)?.TTL ?? defaultTtl;
    r.ResourceRecords = (t.values ?? []).map((Value) => ({ Value }));
  }
  if (same)
    for (const f of ROUTING_FIELDS) if (same[f] !== undefined && same[f] !== null) (r as any)[f] = same[f];
  if (t.setIdentifier) r.SetIdentifier = t.setIdentifier;
  return r;
}

/**
 * One all-or-nothing batch moving `current` (the concerned record sets as they are now) to `target`:
 * DELETEs first (a CNAME must go before an A takes its name), then UPSERTs. Empty when equal.
 */
export function changesToReach(current: RecordSet[], target: RecordSet[]): RecordChange[] {
  const deletes: RecordChange[] = [];
  const upserts: RecordChange[] = [];
  for (const c of current) {
    if (!target.some((t) => sameSlot(t, c))) deletes.push({ Action: 'DELETE', ResourceRecordSet: c });
  }
  for (const t of target) {
    const c = current.find((x) => sameSlot(x, t));
    if (!c || !recordsEqual(c, t)) upserts.push({ Action: 'UPSERT', ResourceRecordSet: t });
  }
  return [...deletes, ...upserts];
}

/** The TTL resolvers may have cached the name with, in seconds (alias records: Route 53 uses 60). */
export function cachedTtl(records: RecordSet[]): number | undefined {
  const ttls = records
    .map((r) => (r.AliasTarget ? 60 : r.TTL))
    .filter((x): x is number => typeof x === 'number');
  return ttls.length ? Math.max(...ttls) : undefined;
}

/** "db.shop.internal A in zone Z0123": the target of a plan line. */
export function changeTarget(zoneId: string, r: RecordSet): string {
  return `${displayName(r.Name)} ${r.Type}${r.SetIdentifier ? ` [${r.SetIdentifier}]` : ''} in zone ${normalizeZoneId(zoneId)}`;
}

/** The plan line of one change, as the recording adapter renders it. */
export function changeLine(zoneId: string, c: RecordChange, before: RecordSet[]): string {
  const r = c.ResourceRecordSet;
  if (c.Action === 'DELETE') return `would delete ${changeTarget(zoneId, r)} (${formatRecord(r)} → (none))`;
  return `would ${c.Action.toLowerCase()} ${changeTarget(zoneId, r)} (${formatRecord(before.find((b) => sameSlot(b, r)))} → ${formatRecord(r)})`;
}
