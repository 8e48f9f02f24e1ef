// Asks specific DNS servers (a zone's authoritative servers, listed resolvers, the sandbox DNS on
// 127.0.0.1:10053) what a name answers, one server at a time: a flip is only visible once every
// server a client may ask answers the new value.
import { isIP } from 'node:net';

export type LookupType = 'A' | 'AAAA' | 'CNAME';

export interface Answer {
  server: string;
  /** Values as the server answered them (CNAME targets without the trailing dot). */
  values: string[];
  ttl?: number;
  /** DNS error code (ENODATA, ENOTFOUND, ETIMEOUT...) when the query failed. */
  error?: string;
}

/** "ns-1.awsdns-01.org" → "205.251.192.1"; keeps ":port" and IP literals as they are. */
export async function serverAddresses(servers: string[]): Promise<string[]> {
  const { lookup } = await import('node:dns/promises');
  const out: string[] = [];
  for (const s of servers) {
    const { host, port } = splitServer(s);
    if (isIP(host)) {
      out.push(s);
      continue;
    }
    const addrs = await lookup(host.replace(/\.$/, ''), { all: true });
    for (const a of addrs) out.push(port ? joinServer(a.address, port) : a.address);
  }
  return out;
}

export function splitServer(s: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1]!, ...(v6[2] ? { port: v6[2] } : {}) };
  const parts = s.split(':');
  if (parts.length === 2) return { host: parts[0]!, port: parts[1]! };
  return { host: s };
}

function joinServer(host: string, port: string): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Queries one server for one type. Never throws for DNS answers: errors are in the result. */
export async function queryServer(
  name: string,
  type: LookupType,
  server: string,
  timeoutMs = 1000,
): Promise<Answer> {
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver({ timeout: timeoutMs, tries: 1 });
  r.setServers([server]);
  const host = name.replace(/\.$/, '');
  try {
    if (type === 'CNAME') {
      const v = await r.resolveCname(host);
      return { server, values: v.map((x) => x.replace(/\.$/, '')) };
    }
    const v = type === 'A' ? await r.resolve4(host, { ttl: true }) : await r.resolve6(host, { ttl: true });
    const ttls = v.map((x) => x.ttl);
    return { server, values: v.map((x) => x.address), ...(ttls.length ? { ttl: Math.min(...ttls) } : {}) };
  } catch (e) {
    return { server, values: [], error: (e as { code?: string }).code ?? (e as Error).message };
  } finally {
    r.cancel();
  }
}

/** Queries every server in parallel. */
export function queryAll(
  name: string,
  type: LookupType,
  servers: string[],
  timeoutMs = 1000,
): Promise<Answer[]> {
  return Promise.all(servers.map((s) => queryServer(name, type, s, timeoutMs)));
}
