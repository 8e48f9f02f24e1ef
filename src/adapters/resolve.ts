// Resolves a database host the way the application does: through listed DNS servers when the
// runbook names them (the sandbox DNS, a VPC resolver), honouring the answer's TTL.
import { isIP } from 'node:net';

export interface Resolved {
  address: string;
  /** Epoch ms after which the answer must be looked up again. */
  expires: number;
}

export async function resolveHost(host: string, resolvers?: string[]): Promise<Resolved> {
  if (isIP(host) || !resolvers?.length) return { address: host, expires: Number.POSITIVE_INFINITY };
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver({ timeout: 1000, tries: 2 });
  r.setServers(resolvers);
  const answers = await r.resolve4(host, { ttl: true });
  const a = answers[0];
  if (!a)
    throw Object.assign(new Error(`${host}: no address from ${resolvers.join(', ')}`), { code: 'ENOTFOUND' });
  return { address: a.address, expires: Date.now() + a.ttl * 1000 };
}
