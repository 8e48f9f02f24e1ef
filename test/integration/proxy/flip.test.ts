// proxy.flip and proxy.hold against the test sandbox's real HAProxy in front of the real MariaDB
// pair: which server a NEW connection through the proxy reaches is asked of the server itself.
import { statSync } from 'node:fs';
import mysql, { type Connection } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { haproxy } from '../../../src/steps/proxy/haproxy.js';
import { proxyFlip } from '../../../src/steps/proxy/flip.js';
import { proxyHold } from '../../../src/steps/proxy/hold.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { createStepHarness, type Harness, runKind, sandboxDatabases } from '../step-harness.js';

let env: SandboxEnv;
const harnesses: Harness[] = [];

function harness(mode: 'live' | 'dry' = 'live'): Harness {
  const base = sandboxDatabases(env);
  const viaProxy = (name: string, user: string, password: string): DatabaseConfig => ({
    name,
    host: env.SANDBOX_PROXY_HOST,
    port: Number(env.SANDBOX_PROXY_PORT),
    user,
    password,
    database: env.SANDBOX_DB_NAME,
    connectTimeoutMs: 3000,
  });
  const h = createStepHarness({
    mode,
    env,
    runId: 'proxy-test',
    databases: {
      ...base,
      proxied: viaProxy('proxied', env.SANDBOX_DB_USER, env.SANDBOX_DB_PASSWORD),
    },
  });
  harnesses.push(h);
  return h;
}

const flipWith = (over: Record<string, unknown> = {}) => ({
  socket: env.SANDBOX_PROXY_SOCKET,
  backend: env.SANDBOX_PROXY_BACKEND,
  from: { server: env.SANDBOX_PROXY_OLD_SERVER, database: 'old' },
  to: { server: env.SANDBOX_PROXY_NEW_SERVER, database: 'new' },
  via: 'proxied',
  verifyInterval: '50ms',
  ...over,
});

/** A fresh connection through the proxy with the app's account (connectTimeout as the canary's). */
function viaProxy(connectTimeout = 3000): Promise<Connection> {
  return mysql.createConnection({
    host: env.SANDBOX_PROXY_HOST,
    port: Number(env.SANDBOX_PROXY_PORT),
    user: env.SANDBOX_APP_DB_USER,
    password: env.SANDBOX_APP_DB_PASSWORD,
    database: env.SANDBOX_DB_NAME,
    connectTimeout,
  });
}

async function serverId(c: Connection): Promise<number> {
  const [rows] = await c.query('SELECT @@server_id AS id');
  return Number((rows as { id: number }[])[0]!.id);
}

/** Which server a brand-new connection through the proxy reaches. */
async function landsOn(): Promise<number> {
  const c = await viaProxy();
  try {
    return await serverId(c);
  } finally {
    await c.end();
  }
}

async function proxyState() {
  const p = haproxy(env.SANDBOX_PROXY_SOCKET);
  return {
    servers: (await p.servers(env.SANDBOX_PROXY_BACKEND)).map((s) => `${s.name}:${s.state}:${s.weight}`),
    held: await p.holding(),
  };
}

const SEED = { servers: ['old:ready:1', 'new:maint:1'], held: false };

beforeAll(async () => {
  env = sandboxEnv();
  await resetSandbox(env);
});
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
  await resetSandbox(env);
});
afterAll(async () => {
  await resetSandbox(env);
});

describe('the sandbox proxy', () => {
  it('sends new connections to old in the seed state; its runtime API is an 0600 socket; env names it', async () => {
    expect(env.SANDBOX_PROXY_HOST).toBe('127.0.0.4');
    expect(env.SANDBOX_PROXY_PORT).toBe(env.SANDBOX_DB_PORT);
    expect(statSync(env.SANDBOX_PROXY_SOCKET).mode & 0o777).toBe(0o600);
    expect(await landsOn()).toBe(1);
    expect(await proxyState()).toEqual(SEED);
  });
});

describe('proxy.flip', () => {
  it('moves new connections to new, cuts the sessions left on old; undo moves them back and cuts new’s', async () => {
    const before = await viaProxy();
    expect(await serverId(before)).toBe(1);
    const h = harness();
    const run = await runKind(h, proxyFlip, flipWith());
    expect(run.snapshot.servers).toEqual([
      { name: 'old', state: 'ready', weight: 1 },
      { name: 'new', state: 'maint', weight: 1 },
    ]);
    expect(run.snapshot.fromKey).not.toBe(run.snapshot.toKey);
    expect(run.outputs).toMatchObject({ from: 'old', to: 'new', released: false });
    expect(run.outputs.cut).toBeGreaterThanOrEqual(1);
    expect(await proxyState()).toEqual({ servers: ['old:maint:1', 'new:ready:1'], held: false });
    for (let i = 0; i < 5; i++) expect(await landsOn()).toBe(2);
    // The session opened through the proxy before the flip was ended: it cannot go on writing to old.
    await expect(before.query('SELECT 1')).rejects.toThrow();
    before.destroy();

    const after = await viaProxy();
    expect(await serverId(after)).toBe(2);
    const u = harness();
    await proxyFlip.undo!(u.ctx('undo'), run.params, run.snapshot, run.outputs);
    expect(await proxyState()).toEqual(SEED);
    for (let i = 0; i < 5; i++) expect(await landsOn()).toBe(1);
    await expect(after.query('SELECT 1')).rejects.toThrow();
    after.destroy();
    // Twice is safe.
    await proxyFlip.undo!(u.ctx('undo'), run.params, run.snapshot, run.outputs);
    expect(await proxyState()).toEqual(SEED);
  });

  it('verify fails when new connections do not land on `to` (asked of the server, not the proxy)', async () => {
    const h = harness();
    // The databases are swapped: the proxy does move to its server "new", but the server answering is
    // not the one the runbook says `to` is, and verify must notice.
    const err = await runKind(
      h,
      proxyFlip,
      flipWith({
        from: { server: env.SANDBOX_PROXY_OLD_SERVER, database: 'new' },
        to: { server: env.SANDBOX_PROXY_NEW_SERVER, database: 'old' },
        verifyTimeout: '1s',
      }),
    ).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.message).toMatch(/land on old: not reached within 1/);
  });

  it('isApplied after a crash between the change and its proof: finishes it (old cut) and says yes', async () => {
    const h = harness();
    const params = proxyFlip.params.parse(flipWith());
    const snap = JSON.parse(JSON.stringify(await proxyFlip.snapshot!(h.ctx(), params)));
    expect(await proxyFlip.isApplied!(h.ctx(), params, snap)).toBe(false);
    const p = haproxy(env.SANDBOX_PROXY_SOCKET);
    await p.setState('mysql', 'old', 'maint');
    await p.setState('mysql', 'new', 'ready');
    expect(await proxyFlip.isApplied!(h.ctx(), params, snap)).toBe(true);
    expect(await landsOn()).toBe(2);
  });

  it('plan: reads the real proxy, records the changes, changes nothing', async () => {
    const h = harness('dry');
    await runKind(h, proxyFlip, flipWith(), 'flip', false);
    expect(h.planLines().join('\n')).toMatch(
      /server mysql\/old: state maint[\s\S]*server mysql\/new: state ready/,
    );
    expect(await proxyState()).toEqual(SEED);
    expect(await landsOn()).toBe(1);
  });

  it('preflight: an unknown server, a missing socket — one readable line each, nothing changed', async () => {
    const h = harness();
    await expect(
      proxyFlip.preflight!(
        h.ctx(),
        proxyFlip.params.parse(flipWith({ to: { server: 'nwe', database: 'new' } })),
      ),
    ).rejects.toThrow(/backend mysql has no server "nwe" \(it has old, new\)/);
    await expect(
      proxyFlip.preflight!(
        h.ctx(),
        proxyFlip.params.parse(flipWith({ socket: `${env.SANDBOX_DIR}/nope.sock` })),
      ),
    ).rejects.toThrow(/cannot reach HAProxy's runtime API at .*nope\.sock \(ENOENT\)/);
    expect(await proxyState()).toEqual(SEED);
  });
});

describe('proxy.hold', () => {
  const holdWith = (over: Record<string, unknown> = {}) => ({
    socket: env.SANDBOX_PROXY_SOCKET,
    plug: env.SANDBOX_PROXY_HOLD_SOCKET,
    ...over,
  });

  it('a new connection waits (no error) while held, and the flip lets it in, to new', async () => {
    const h = harness();
    await runKind(h, proxyHold, holdWith());
    expect((await proxyState()).held).toBe(true);
    const t0 = performance.now();
    const waiting = viaProxy(5000).then(async (c) => {
      const at = performance.now() - t0;
      const id = await serverId(c);
      await c.end();
      return { at, id };
    });
    await new Promise((r) => setTimeout(r, 700));
    const flip = await runKind(h, proxyFlip, flipWith());
    expect(flip.outputs.released).toBe(true);
    const got = await waiting;
    expect(got.id).toBe(2);
    expect(got.at).toBeGreaterThanOrEqual(650);
    expect((await proxyState()).held).toBe(false);
  });

  it('undo lets held connections in (to old when no flip ran); maxHold ends a hold on its own', async () => {
    const h = harness();
    const run = await runKind(h, proxyHold, holdWith());
    const waiting = viaProxy(5000).then(async (c) => {
      const id = await serverId(c);
      await c.end();
      return id;
    });
    await new Promise((r) => setTimeout(r, 300));
    await proxyHold.undo!(h.ctx('undo'), run.params, run.snapshot, run.outputs);
    expect(await waiting).toBe(1);
    expect(await proxyState()).toEqual(SEED);

    await runKind(h, proxyHold, holdWith({ maxHold: '400ms' }));
    expect((await proxyState()).held).toBe(true);
    await new Promise((r) => setTimeout(r, 700));
    expect(await proxyState()).toEqual(SEED);
  });

  it('enabled: false changes nothing', async () => {
    const h = harness();
    await runKind(h, proxyHold, holdWith({ enabled: false }));
    expect(await proxyState()).toEqual(SEED);
  });
});
