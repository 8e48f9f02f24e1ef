import { describe, expect, it } from 'vitest';
import type { ValidateContext } from '../../../src/engine/types.js';
import { type ProxyFlipSnapshot, proxyFlip } from '../../../src/steps/proxy/flip.js';
import { proxyHold } from '../../../src/steps/proxy/hold.js';
import { getKind } from '../../../src/steps/registry.js';

function issues(raw: unknown): string[] {
  const out: string[] = [];
  proxyFlip.validate?.(proxyFlip.params.parse(raw), {
    pos: () => ({ file: 'x.yaml', line: 1, col: 1 }),
    issue: (path, message) => out.push(`${path.join('.')}: ${message}`),
    databases: new Set(),
    budgetMs: undefined,
  } satisfies ValidateContext);
  return out;
}

const flip = {
  socket: '/run/haproxy/admin.sock',
  backend: 'mysql',
  from: { server: 'old', database: 'old' },
  to: { server: 'new', database: 'new' },
  via: 'proxied',
};

/** The proxy as the sandbox seeds it: old ready, new in maint. */
const SNAPSHOT: ProxyFlipSnapshot = {
  socket: flip.socket,
  backend: 'mysql',
  servers: [
    { name: 'old', state: 'ready', weight: 1 },
    { name: 'new', state: 'maint', weight: 1 },
  ],
  from: 'old',
  to: 'new',
  fromKey: 'a',
  toKey: 'b',
};

describe('proxy kinds', () => {
  it('are registered, need no AWS permission', () => {
    expect(getKind('proxy.flip')).toBe(proxyFlip);
    expect(getKind('proxy.hold')).toBe(proxyHold);
    expect(proxyFlip.iam?.(proxyFlip.params.parse(flip))).toEqual([]);
    expect(proxyFlip.databases?.(proxyFlip.params.parse(flip))).toEqual(['old', 'new', 'proxied']);
  });

  it('proxy.flip: defaults, and only HAProxy (no untested ProxySQL path)', () => {
    const p = proxyFlip.params.parse(flip);
    expect(p).toMatchObject({ proxy: 'haproxy', cutSessions: true, connections: 3 });
    expect(proxyFlip.params.safeParse({ ...flip, proxy: 'proxysql' }).success).toBe(false);
    expect(proxyFlip.params.safeParse({ ...flip, extra: 1 }).success).toBe(false);
  });

  it('proxy.flip validate: same server, same database, or a via that bypasses the proxy', () => {
    expect(issues(flip)).toEqual([]);
    expect(issues({ ...flip, to: { server: 'old', database: 'new' } })).toEqual([
      'to.server: from and to name the same proxy server',
    ]);
    expect(issues({ ...flip, to: { server: 'new', database: 'old' } })).toEqual([
      'to.database: from and to name the same database',
    ]);
    expect(issues({ ...flip, via: 'new' })).toEqual([
      'via: via must connect through the proxy, not to one server directly',
    ]);
  });

  it('plan lines name the before → after of each server, and the landing proof', () => {
    const p = proxyFlip.params.parse(flip);
    const lines = proxyFlip.describe(p, SNAPSHOT);
    expect(lines).toEqual([
      'would set server mysql/new ready (was maint, weight 1)',
      'would set server mysql/old maint (was ready, weight 1)',
      'would end the sessions HAProxy holds to old',
      'then: let held connections in; check that 3 new connections through proxied land on new',
    ]);
  });

  it('restoreHint gives runnable runtime API commands, leaving servers first', () => {
    const p = proxyFlip.params.parse(flip);
    const hint = proxyFlip.restoreHint!(p, SNAPSHOT, undefined);
    expect(hint[0]).toContain(
      'echo "set server mysql/new state maint" | socat - UNIX:/run/haproxy/admin.sock',
    );
    expect(hint[1]).toContain('set server mysql/old state ready');
    expect(hint[2]).toContain('shutdown sessions server mysql/new');
  });

  it('proxy.hold: maxHold default 30s; enabled: false plans nothing', () => {
    const p = proxyHold.params.parse({ socket: '/s', plug: '/p' });
    expect(p).toMatchObject({ enabled: true, maxHold: '30s' });
    expect(proxyHold.describe({ ...p, enabled: false }, undefined)).toEqual([
      'would not hold new connections (enabled: false)',
    ]);
  });
});
