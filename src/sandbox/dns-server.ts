// Authoritative DNS over UDP for the sandbox zones, answering from the Route 53 emulation's state as
// Route 53's own name servers would: a change becomes visible when it is INSYNC, TTLs are the
// records', CNAME chains inside the zone are followed so stub resolvers (resolve4) get addresses.
import dgram from 'node:dgram';
import dnsPacket, { type Answer, type DecodedPacket, type Question } from 'dns-packet';
import { type AwsState, fqdn, type HostedZone, type RecordSet, servedRecords } from './aws-state.js';

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const MAX_CHAIN = 8;

const bare = (name: string) => name.replace(/\.$/, '');

function toAnswer(r: RecordSet, value: string, ownerName: string): Answer | undefined {
  const base = { name: bare(ownerName), ttl: r.ttl ?? 60, class: 'IN' as const };
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return { ...base, type: r.type, data: value };
    case 'CNAME':
    case 'NS':
    case 'PTR':
      return { ...base, type: r.type, data: bare(value) };
    case 'TXT':
    case 'SPF':
      return {
        ...base,
        type: 'TXT',
        data: (value.match(/"((?:[^"\\]|\\.)*)"/g) ?? [value]).map((s) => s.replace(/^"|"$/g, '')),
      };
    case 'MX': {
      const [pref, ex] = value.split(/\s+/);
      return { ...base, type: 'MX', data: { preference: Number(pref), exchange: bare(ex ?? '') } };
    }
    case 'SRV': {
      const [priority, weight, port, target] = value.split(/\s+/);
      return {
        ...base,
        type: 'SRV',
        data: {
          priority: Number(priority),
          weight: Number(weight),
          port: Number(port),
          target: bare(target ?? ''),
        },
      };
    }
    case 'SOA': {
      const [mname, rname, serial, refresh, retry, expire, minimum] = value.split(/\s+/);
      return {
        ...base,
        type: 'SOA',
        data: {
          mname: bare(mname ?? ''),
          rname: bare(rname ?? ''),
          serial: Number(serial),
          refresh: Number(refresh),
          retry: Number(retry),
          expire: Number(expire),
          minimum: Number(minimum),
        },
      };
    }
    default:
      return undefined;
  }
}

function answersFor(r: RecordSet, owner: string): Answer[] {
  return r.values.map((v) => toAnswer(r, v, owner)).filter((a): a is Answer => a !== undefined);
}

export interface DnsAnswer {
  rcode: number;
  answers: Answer[];
  authorities: Answer[];
}

/** Resolves one question against the served zone data; exported so it can be tested without sockets. */
export function resolveQuestion(state: AwsState, q: Question): DnsAnswer {
  const name = fqdn(q.name);
  const zone = state.zones
    .filter((z) => name === z.name || name.endsWith(`.${z.name}`))
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (!zone) return { rcode: RCODE.REFUSED, answers: [], authorities: [] };
  const records = servedRecords(state, zone);
  const soa = () => {
    const s = records.find((r) => r.type === 'SOA' && r.name === zone.name);
    return s ? answersFor({ ...s, ttl: Math.min(s.ttl ?? 900, 900) }, zone.name) : [];
  };
  const answers: Answer[] = [];
  let current = name;
  for (let hop = 0; hop < MAX_CHAIN; hop++) {
    const here = records.filter((r) => r.name === current);
    const anyType = (q.type as string) === 'ANY';
    const wanted = here.filter((r) => anyType || r.type === q.type || (q.type === 'TXT' && r.type === 'SPF'));
    if (wanted.length) {
      for (const r of wanted) answers.push(...answersFor(r, current));
      return { rcode: RCODE.NOERROR, answers, authorities: [] };
    }
    const cname = here.find((r) => r.type === 'CNAME');
    if (cname && q.type !== 'CNAME') {
      answers.push(...answersFor(cname, current));
      const target = fqdn(cname.values[0] ?? '');
      if (!inZone(zone, target)) return { rcode: RCODE.NOERROR, answers, authorities: [] };
      current = target;
      continue;
    }
    if (here.length || hasDescendants(records, current))
      return { rcode: RCODE.NOERROR, answers, authorities: answers.length ? [] : soa() };
    return { rcode: RCODE.NXDOMAIN, answers, authorities: soa() };
  }
  return { rcode: RCODE.SERVFAIL, answers, authorities: [] };
}

function inZone(zone: HostedZone, name: string): boolean {
  return name === zone.name || name.endsWith(`.${zone.name}`);
}

// An empty non-terminal (a name with only names below it) exists: NODATA, not NXDOMAIN.
function hasDescendants(records: RecordSet[], name: string): boolean {
  return records.some((r) => r.name.endsWith(`.${name}`));
}

export function respond(state: AwsState, query: DecodedPacket): Buffer {
  const q = query.questions?.[0];
  const rd = query.flags !== undefined ? query.flags & dnsPacket.RECURSION_DESIRED : 0;
  let result: DnsAnswer = { rcode: RCODE.NOTIMP, answers: [], authorities: [] };
  if (q && (query as { opcode?: string }).opcode === 'QUERY' && (q.class === undefined || q.class === 'IN')) {
    result = resolveQuestion(state, q);
  } else if (q) {
    result = { rcode: RCODE.REFUSED, answers: [], authorities: [] };
  }
  const flags = (result.rcode === RCODE.REFUSED ? 0 : dnsPacket.AUTHORITATIVE_ANSWER) | rd | result.rcode;
  return dnsPacket.encode({
    type: 'response',
    id: query.id ?? 0,
    flags,
    questions: query.questions ?? [],
    answers: result.answers,
    authorities: result.authorities,
  });
}

export function createDnsServer(getState: () => AwsState): dgram.Socket {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: drop it as a real server would
    }
    if (query.type !== 'query') return;
    let out: Buffer;
    try {
      out = respond(getState(), query);
    } catch (e) {
      console.error('[dns] failed to answer:', e);
      out = dnsPacket.encode({
        type: 'response',
        id: query.id ?? 0,
        flags: RCODE.SERVFAIL,
        questions: query.questions ?? [],
      });
    }
    sock.send(out, rinfo.port, rinfo.address);
  });
  return sock;
}
