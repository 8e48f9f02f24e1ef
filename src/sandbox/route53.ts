// Route 53 subset over REST-XML (paths under /2013-04-01/), with its change semantics: a batch is
// validated against the zone as it would be after each change and applied all-or-nothing, and a
// change is PENDING until the configured INSYNC delay has passed.
import { XMLParser } from 'fast-xml-parser';
import { REGION, VPC_ID } from './config.js';
import {
  type AwsState,
  changeStatus,
  fqdn,
  type HostedZone,
  newChangeId,
  type RecordSet,
  type ZoneChange,
} from './aws-state.js';
import { AwsError, errorResponseXml, list, type XmlChild, type XmlNode, xmlDocument } from './aws-xml.js';

export const ROUTE53_XMLNS = 'https://route53.amazonaws.com/doc/2013-04-01/';
export const ROUTE53_MUTATING = ['ChangeResourceRecordSets'];
export const ROUTE53_ACTIONS = [
  'ListHostedZones',
  'ListHostedZonesByName',
  'GetHostedZone',
  'ListResourceRecordSets',
  'GetChange',
  ...ROUTE53_MUTATING,
];

export interface Route53Request {
  action: string;
  zoneId?: string;
  changeId?: string;
}

/** Maps method and path to the Route 53 operation, so faults and counters apply before any work. */
export function route53Operation(method: string, path: string): Route53Request {
  const p = path.replace(/\/+$/, '');
  if (method === 'GET' && p === '/2013-04-01/hostedzone') return { action: 'ListHostedZones' };
  if (method === 'GET' && p === '/2013-04-01/hostedzonesbyname') return { action: 'ListHostedZonesByName' };
  const rrset = /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset$/.exec(p);
  if (rrset) {
    const zoneId = decodeURIComponent(rrset[1]!);
    if (method === 'GET') return { action: 'ListResourceRecordSets', zoneId };
    if (method === 'POST') return { action: 'ChangeResourceRecordSets', zoneId };
  }
  const zone = /^\/2013-04-01\/hostedzone\/([^/]+)$/.exec(p);
  if (method === 'GET' && zone) return { action: 'GetHostedZone', zoneId: decodeURIComponent(zone[1]!) };
  const change = /^\/2013-04-01\/change\/([^/]+)$/.exec(p);
  if (method === 'GET' && change) return { action: 'GetChange', changeId: decodeURIComponent(change[1]!) };
  return { action: 'Unknown' };
}

/** Route 53 orders names by their labels read right to left. */
function nameKey(name: string): string {
  return fqdn(name).split('.').filter(Boolean).reverse().join('\u0001');
}

function compareRecords(a: { name: string; type: string }, b: { name: string; type: string }): number {
  const ka = nameKey(a.name);
  const kb = nameKey(b.name);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.type < b.type ? -1 : a.type > b.type ? 1 : 0;
}

function zoneById(state: AwsState, id: string | undefined): HostedZone {
  const bare = (id ?? '').replace(/^\/?hostedzone\//, '');
  const z = state.zones.find((x) => x.id === bare);
  if (!z) throw new AwsError('NoSuchHostedZone', `No hosted zone found with ID: ${bare}`, 404);
  return z;
}

function zoneXml(z: HostedZone): XmlChild[] {
  return [
    ['Id', `/hostedzone/${z.id}`],
    ['Name', z.name],
    ['CallerReference', z.callerReference],
    [
      'Config',
      [
        ['Comment', z.comment],
        ['PrivateZone', z.privateZone],
      ],
    ],
    ['ResourceRecordSetCount', z.records.length],
  ];
}

function recordXml(r: RecordSet): XmlChild[] {
  return [
    ['Name', r.name],
    ['Type', r.type],
    ['SetIdentifier', r.setIdentifier],
    ['Weight', r.weight],
    ['TTL', r.ttl],
    list('ResourceRecords', 'ResourceRecord', r.values, (v) => [['Value', v]]),
    r.aliasTarget && [
      'AliasTarget',
      [
        ['HostedZoneId', r.aliasTarget.hostedZoneId],
        ['DNSName', r.aliasTarget.dnsName],
        ['EvaluateTargetHealth', r.aliasTarget.evaluateTargetHealth],
      ],
    ],
  ];
}

function changeInfoXml(c: ZoneChange): XmlNode {
  return [
    'ChangeInfo',
    [
      ['Id', `/change/${c.id}`],
      ['Status', changeStatus(c)],
      ['SubmittedAt', c.submittedAt],
      ['Comment', c.comment],
    ],
  ];
}

function maxItems(q: URLSearchParams, dflt: number): number {
  const v = q.get('maxitems');
  if (v === null) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new AwsError(
      'InvalidInput',
      `1 validation error detected: Value '${v}' at 'maxItems' failed to satisfy constraint: Member must be a positive integer`,
    );
  return n;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => name === 'Change' || name === 'ResourceRecord',
});

interface ChangeInput {
  action: string;
  rrset: RecordSet;
}

function parseChanges(body: string): { comment?: string; changes: ChangeInput[] } {
  let doc: any;
  try {
    doc = parser.parse(body);
  } catch (e) {
    throw new AwsError('InvalidInput', `Could not parse the request body as XML: ${(e as Error).message}`);
  }
  const batch = doc?.ChangeResourceRecordSetsRequest?.ChangeBatch;
  const raw: any[] = batch?.Changes?.Change ?? [];
  if (!batch)
    throw new AwsError(
      'InvalidInput',
      "1 validation error detected: Value null at 'changeBatch' failed to satisfy constraint: Member must not be null",
    );
  if (!raw.length)
    throw new AwsError(
      'InvalidInput',
      "1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
  const changes = raw.map((c): ChangeInput => {
    const action = String(c?.Action ?? '');
    const r = c?.ResourceRecordSet ?? {};
    if (!['CREATE', 'DELETE', 'UPSERT'].includes(action)) {
      throw new AwsError(
        'InvalidInput',
        `1 validation error detected: Value '${action}' at 'changeBatch.changes.1.member.action' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, DELETE, UPSERT]`,
      );
    }
    const name = String(r.Name ?? '');
    const type = String(r.Type ?? '').toUpperCase();
    const values: string[] = (r.ResourceRecords?.ResourceRecord ?? []).map((x: any) =>
      String(x?.Value ?? ''),
    );
    const alias = r.AliasTarget;
    const ttl = r.TTL === undefined || r.TTL === '' ? undefined : Number(r.TTL);
    const setIdentifier = r.SetIdentifier === undefined ? undefined : String(r.SetIdentifier);
    if (!alias && (ttl === undefined || !values.length)) {
      throw new AwsError(
        'InvalidInput',
        `Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=${action}, Name=${name}, Type=${type}, SetIdentifier=${setIdentifier ?? 'null'}]`,
      );
    }
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 0 || ttl > 2147483647)) {
      throw new AwsError(
        'InvalidInput',
        `1 validation error detected: Value '${r.TTL}' at 'changeBatch.changes.member.resourceRecordSet.tTL' failed to satisfy constraint: Member must be between 0 and 2147483647`,
      );
    }
    const rrset: RecordSet = { name: fqdn(name), type, values };
    if (ttl !== undefined) rrset.ttl = ttl;
    if (setIdentifier !== undefined) rrset.setIdentifier = setIdentifier;
    if (r.Weight !== undefined) rrset.weight = Number(r.Weight);
    if (alias) {
      rrset.aliasTarget = {
        hostedZoneId: String(alias.HostedZoneId ?? ''),
        dnsName: String(alias.DNSName ?? ''),
        evaluateTargetHealth: String(alias.EvaluateTargetHealth) === 'true',
      };
    }
    return { action, rrset };
  });
  return { ...(batch.Comment !== undefined ? { comment: String(batch.Comment) } : {}), changes };
}

const TYPES = new Set([
  'A',
  'AAAA',
  'CAA',
  'CNAME',
  'DS',
  'MX',
  'NAPTR',
  'NS',
  'PTR',
  'SOA',
  'SPF',
  'SRV',
  'TXT',
]);
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

const label = (r: RecordSet) =>
  `[name='${r.name}', type='${r.type}'${r.setIdentifier !== undefined ? `, set-identifier='${r.setIdentifier}'` : ''}]`;
const sameKey = (a: RecordSet, b: RecordSet) =>
  a.name === b.name && a.type === b.type && a.setIdentifier === b.setIdentifier;

function sameContent(a: RecordSet, b: RecordSet): boolean {
  const norm = (r: RecordSet) =>
    JSON.stringify([r.ttl ?? null, [...r.values].sort(), r.aliasTarget ?? null, r.weight ?? null]);
  return norm(a) === norm(b);
}

/** Problems with one record set on its own, as Route 53 words them. */
function recordProblems(zone: HostedZone, r: RecordSet): string[] {
  const problems: string[] = [];
  if (r.name !== zone.name && !r.name.endsWith(`.${zone.name}`))
    problems.push(`RRSet with DNS name ${r.name} is not permitted in zone ${zone.name}`);
  if (!TYPES.has(r.type))
    problems.push(`Invalid Resource Record: 'FATAL problem: UnsupportedType (${r.type}) encountered'`);
  if (r.type === 'A') {
    for (const v of r.values) {
      const m = IPV4.exec(v);
      if (!m || m.slice(1).some((o) => Number(o) > 255)) {
        problems.push(
          `Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '${v}''`,
        );
      }
    }
  }
  if (r.type === 'CNAME') {
    if (r.name === zone.name)
      problems.push(
        `RRSet of type CNAME with DNS name ${r.name} is not permitted at apex in zone ${zone.name}`,
      );
    if (r.values.length > 1)
      problems.push(`RRSet of type CNAME with DNS name ${r.name} has more than one resource record`);
  }
  return problems;
}

/** Applies the batch to a copy of the zone's records; returns the new records or every problem found. */
function applyBatch(zone: HostedZone, changes: ChangeInput[]): { records: RecordSet[]; problems: string[] } {
  const records = structuredClone(zone.records);
  const problems: string[] = [];
  for (const { action, rrset } of changes) {
    const own = recordProblems(zone, rrset);
    if (own.length) {
      problems.push(...own);
      continue;
    }
    const idx = records.findIndex((r) => sameKey(r, rrset));
    if (action === 'DELETE') {
      if (idx < 0) problems.push(`Tried to delete resource record set ${label(rrset)} but it was not found`);
      else if (!sameContent(records[idx]!, rrset))
        problems.push(
          `Tried to delete resource record set ${label(rrset)} but the values provided do not match the current values`,
        );
      else if (rrset.name === zone.name && (rrset.type === 'SOA' || rrset.type === 'NS'))
        problems.push(`A HostedZone must contain at least one ${rrset.type} record for the zone itself.`);
      else records.splice(idx, 1);
      continue;
    }
    if (action === 'CREATE' && idx >= 0) {
      problems.push(`Tried to create resource record set ${label(rrset)} but it already exists`);
      continue;
    }
    const others = records.filter((r, i) => i !== idx && r.name === rrset.name);
    if (
      (rrset.type === 'CNAME' && others.length) ||
      (rrset.type !== 'CNAME' && others.some((r) => r.type === 'CNAME'))
    ) {
      problems.push(
        `RRSet of type ${rrset.type} with DNS name ${rrset.name} is not permitted because a conflicting RRSet of type ${rrset.type === 'CNAME' ? others[0]!.type : 'CNAME'} with the same DNS name already exists in zone ${zone.name}`,
      );
      continue;
    }
    if (idx >= 0) records[idx] = rrset;
    else records.push(rrset);
  }
  records.sort(compareRecords);
  return { records, problems };
}

export function handleRoute53(
  op: Route53Request,
  query: URLSearchParams,
  body: string,
  state: AwsState,
): string {
  const doc = (root: string, nodes: XmlChild[]) => xmlDocument(root, ROUTE53_XMLNS, nodes);
  switch (op.action) {
    case 'ListHostedZones': {
      const zones = [...state.zones].sort((a, b) => a.id.localeCompare(b.id));
      const max = maxItems(query, 100);
      return doc('ListHostedZonesResponse', [
        list('HostedZones', 'HostedZone', zones.slice(0, max), zoneXml),
        ['IsTruncated', zones.length > max],
        zones.length > max && ['NextMarker', zones[max]!.id],
        ['MaxItems', max],
      ]);
    }
    case 'ListHostedZonesByName': {
      const dnsName = query.get('dnsname');
      const zoneId = query.get('hostedzoneid');
      if (zoneId && !dnsName)
        throw new AwsError('InvalidInput', 'The input is not valid: hostedzoneid requires dnsname');
      let zones = [...state.zones].sort((a, b) =>
        compareRecords({ name: a.name, type: a.id }, { name: b.name, type: b.id }),
      );
      if (dnsName)
        zones = zones.filter(
          (z) => compareRecords({ name: z.name, type: '' }, { name: dnsName, type: '' }) >= 0,
        );
      const max = maxItems(query, 100);
      return doc('ListHostedZonesByNameResponse', [
        list('HostedZones', 'HostedZone', zones.slice(0, max), zoneXml),
        ['DNSName', dnsName ?? undefined],
        ['HostedZoneId', zoneId ?? undefined],
        ['IsTruncated', zones.length > max],
        zones.length > max && ['NextDNSName', zones[max]!.name],
        zones.length > max && ['NextHostedZoneId', zones[max]!.id],
        ['MaxItems', max],
      ]);
    }
    case 'GetHostedZone': {
      const z = zoneById(state, op.zoneId);
      // As AWS: a public zone has a delegation set (its four name servers, those of its NS
      // record); a private zone has none, only its VPCs, whose resolver answers for it.
      const ns = z.records.find((r) => r.type === 'NS' && r.name === z.name)?.values ?? [];
      return doc('GetHostedZoneResponse', [
        !z.privateZone && [
          'DelegationSet',
          [list('NameServers', 'NameServer', ns, (v) => v.replace(/\.$/, ''))],
        ],
        ['HostedZone', zoneXml(z)],
        z.privateZone && [
          'VPCs',
          [
            [
              'VPC',
              [
                ['VPCRegion', REGION],
                ['VPCId', VPC_ID],
              ],
            ],
          ],
        ],
      ]);
    }
    case 'ListResourceRecordSets': {
      const z = zoneById(state, op.zoneId);
      const name = query.get('name');
      const type = query.get('type');
      if (type && !name) throw new AwsError('InvalidInput', 'The input is not valid: type requires name');
      const sorted = [...z.records].sort(compareRecords);
      const start = name ? sorted.filter((r) => compareRecords(r, { name, type: type ?? '' }) >= 0) : sorted;
      const max = maxItems(query, 300);
      const page = start.slice(0, max);
      const next = start[max];
      return doc('ListResourceRecordSetsResponse', [
        list('ResourceRecordSets', 'ResourceRecordSet', page, recordXml) ?? ['ResourceRecordSets', ''],
        ['IsTruncated', next !== undefined],
        next && ['NextRecordName', next.name],
        next && ['NextRecordType', next.type],
        next?.setIdentifier !== undefined && ['NextRecordIdentifier', next.setIdentifier],
        ['MaxItems', max],
      ]);
    }
    case 'ChangeResourceRecordSets': {
      const z = zoneById(state, op.zoneId);
      const { comment, changes } = parseChanges(body);
      const { records, problems } = applyBatch(z, changes);
      if (problems.length) throw new AwsError('InvalidChangeBatch', `[${problems.join(', ')}]`);
      z.records = records;
      const now = Date.now();
      const change: ZoneChange = {
        id: newChangeId(),
        zoneId: z.id,
        submittedAt: new Date(now),
        insyncAt: now + state.insyncDelayMs,
        ...(comment !== undefined ? { comment } : {}),
        recordsAfter: structuredClone(records),
      };
      state.changes.set(change.id, change);
      return doc('ChangeResourceRecordSetsResponse', [changeInfoXml(change)]);
    }
    case 'GetChange': {
      const id = (op.changeId ?? '').replace(/^\/?change\//, '');
      const c = state.changes.get(id);
      if (!c)
        throw new AwsError(
          'NoSuchChange',
          `A change with the specified change ID does not exist: ${id}`,
          404,
        );
      return doc('GetChangeResponse', [changeInfoXml(c)]);
    }
    default:
      throw new AwsError(
        'InvalidAction',
        `The sandbox does not emulate this Route 53 operation (it emulates ${ROUTE53_ACTIONS.join(', ')})`,
        400,
      );
  }
}

export const route53ErrorXml = (e: AwsError, reqId: string): string =>
  errorResponseXml(ROUTE53_XMLNS, e, reqId);
