// smoke.test: HTTP checks against a local server (status, body, JSON path, latency) and the demo
// app through the maintenance bypass; SQL checks against the sandbox's MariaDB servers: a canary
// row written through the application's DNS name with the application's account, read back on
// another server, always removed; queries; old vs new comparisons.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import mysql, { type Connection } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setMaintenance } from '../../../src/sandbox/admin-client.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { smokeTest } from '../../../src/steps/ops/smoke.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { codeOf, createHarness, type Harness, messageOf, runStep, sandboxDatabases } from './harness.js';

const env = sandboxEnv();
const databases = sandboxDatabases(env);
let server: http.Server;
let base: string;
let h: Harness;
let old: Connection;
let replica: Connection;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const send = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (req.url === '/ok') return send(200, JSON.stringify({ status: 'ok', items: [{ id: 7 }] }));
    if (req.url === '/slow') return void setTimeout(() => send(200, '{"status":"ok"}'), 400);
    if (req.url === '/error') return send(500, '{"error":"boom"}');
    send(404, '{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const conn = (host: string) =>
    mysql.createConnection({
      host,
      port: Number(env.SANDBOX_DB_PORT),
      user: env.SANDBOX_DB_USER,
      password: env.SANDBOX_DB_PASSWORD,
      database: env.SANDBOX_DB_NAME,
    });
  old = await conn(env.SANDBOX_OLD_DB_HOST);
  replica = await conn(env.SANDBOX_NEW_DB_HOST);
});
afterEach(async () => {
  await h?.close();
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await old.end();
  await replica.end();
  await resetSandbox(env);
});

async function canaryTables(c: Connection): Promise<number> {
  const [rows] = await c.query(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_NAME = 'cutover_smoke_canary'",
  );
  return Number((rows as { n: number }[])[0]!.n);
}

async function settled(c: Connection): Promise<void> {
  // The replica applies the DROP shortly after the primary.
  for (let i = 0; i < 100 && (await canaryTables(c)) > 0; i++) await new Promise((r) => setTimeout(r, 50));
}

describe('smoke.test: HTTP', () => {
  it('passes when every check holds, and records every result', async () => {
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, smokeTest, {
      http: [
        { name: 'status', url: `${base}/ok`, status: 200 },
        { name: 'body', url: `${base}/ok`, bodyContains: '"status":"ok"', bodyMatches: 'items' },
        { name: 'json', url: `${base}/ok`, json: { path: '$.items[0].id', equals: 7 } },
        { name: 'fast enough', url: `${base}/slow`, maxLatency: '2s' },
      ],
    });
    expect(step.error).toBeUndefined();
    const out = step.outputs as { passed: boolean; http: { name: string; status: number; ok: boolean }[] };
    expect(out.passed).toBe(true);
    expect(out.http.map((r) => [r.name, r.status, r.ok])).toEqual([
      ['status', 200, true],
      ['body', 200, true],
      ['json', 200, true],
      ['fast enough', 200, true],
    ]);
  });

  it('fails on a wrong status, a missing body match, a too-slow response and an unreachable URL, naming each', async () => {
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, smokeTest, {
      http: [
        { name: 'wrong-status', url: `${base}/error`, status: 200 },
        { name: 'missing-body', url: `${base}/ok`, bodyContains: 'checkout' },
        { name: 'too-slow', url: `${base}/slow`, maxLatency: '100ms' },
        { name: 'fine', url: `${base}/ok` },
        { name: 'refused', url: 'http://127.0.0.1:9/', timeout: '1s' },
      ],
    });
    expect(codeOf(step.error)).toBe('SMOKE_TEST_FAILED');
    expect(messageOf(step.error)).toMatch(
      /^smoke test failed \(4 of 5 checks\): wrong-status: status 500, expected 200; missing-body: body does not contain "checkout"; too-slow: took 4\d\dms, limit 100ms; refused: http:\/\/127\.0\.0\.1:9\/: ECONNREFUSED$/,
    );
  });

  it('reaches the demo app through the maintenance bypass while customers see maintenance', async () => {
    await setMaintenance(env, { enabled: true, scope: 'all' });
    try {
      h = createHarness({ mode: 'live', env });
      const check = {
        url: env.SANDBOX_APP_MOBILE_URL,
        status: 200,
        json: { path: '$.products[0].sku', exists: true },
      };
      const bypass = {
        header: { name: env.SANDBOX_APP_BYPASS_HEADER, value: { env: 'SANDBOX_APP_BYPASS_TOKEN' } },
      };
      const through = await runStep(h, smokeTest, {
        bypass,
        http: [{ name: 'mobile via bypass', ...check }],
      });
      expect(through.error).toBeUndefined();
      const customer = await runStep(h, smokeTest, {
        bypass,
        http: [{ name: 'mobile as a customer', bypass: false, ...check }],
      });
      expect(messageOf(customer.error)).toMatch(/mobile as a customer: status 503, expected 200/);
      const office = await runStep(h, smokeTest, {
        bypass: { localAddress: env.SANDBOX_APP_BYPASS_LOCAL_ADDRESS },
        http: [{ name: 'from the office', ...check }],
      });
      expect(office.error).toBeUndefined();
    } finally {
      await setMaintenance(env, { enabled: false, scope: 'all' });
    }
  });
});

describe('smoke.test: SQL', () => {
  it('writes a canary through the DNS name with the app account, reads it back on the replica, removes it; compares old and new', async () => {
    h = createHarness({ mode: 'live', env, databases, runId: 'smoke-it' });
    const step = await runStep(h, smokeTest, {
      canary: { on: 'app', setupOn: 'old', readOn: 'new', mustReach: 'old' },
      queries: [
        { name: 'products', on: 'new', sql: 'SELECT COUNT(*) AS n FROM products', expect: { min: 1 } },
      ],
      compare: [{ on: ['old', 'new'], table: 'products' }],
    });
    expect(step.error).toBeUndefined();
    const out = step.outputs as unknown as {
      canary: Record<string, unknown>;
      compare: { ok: boolean; left: unknown; right: unknown }[];
    };
    expect(out.canary).toMatchObject({
      written: true,
      readBack: true,
      cleanedUp: true,
      tableDropped: true,
      ok: true,
      table: 'cutover_smoke_canary',
      readOn: 'new',
    });
    expect(String(out.canary.wroteTo)).toMatch(
      /^database "app" \(db\.sandbox\.internal:\d+\) = server_id 1 /,
    );
    expect(out.canary.id).toBe((step.snapshot as { canaryId: string }).canaryId);
    expect(out.compare[0]).toMatchObject({ ok: true });
    expect(out.compare[0]!.left).toBe(out.compare[0]!.right);
    // Gone: the row, and the table the step created, on both servers.
    await settled(replica);
    expect(await canaryTables(old)).toBe(0);
    expect(await canaryTables(replica)).toBe(0);
    // The password never shows in what is journaled.
    expect(JSON.stringify(step)).not.toContain(env.SANDBOX_APP_DB_PASSWORD);
    expect(h.warnings).toEqual([]);
  });

  it("with a canary table that already exists, removes its rows (and an earlier attempt's) and keeps the table and others' rows", async () => {
    await old.query(
      'CREATE TABLE cutover_smoke_canary (id VARCHAR(100) NOT NULL PRIMARY KEY, run_id VARCHAR(100) NOT NULL, step_id VARCHAR(100) NOT NULL, written_at DATETIME(6) NOT NULL)',
    );
    // A row left by an attempt of this same step that died before its cleanup, and another run's row.
    await old.query(
      "INSERT INTO cutover_smoke_canary VALUES ('ops-harness/smoke.test/dead', 'ops-harness', 'smoke.test', NOW()), ('other-run/smoke/x', 'other-run', 'smoke', NOW())",
    );
    try {
      h = createHarness({ mode: 'live', env, databases });
      const step = await runStep(h, smokeTest, {
        canary: { on: 'app', setupOn: 'old', readOn: 'new', mustReach: 'old' },
      });
      expect(step.error).toBeUndefined();
      expect(step.snapshot).toMatchObject({ tableExisted: true });
      expect((step.outputs as { canary: unknown }).canary).toMatchObject({
        readBack: true,
        cleanedUp: true,
        tableDropped: false,
      });
      const [rows] = await old.query('SELECT id FROM cutover_smoke_canary');
      expect(rows).toEqual([{ id: 'other-run/smoke/x' }]);
      expect(await canaryTables(old)).toBe(1);
    } finally {
      await old.query('DROP TABLE IF EXISTS cutover_smoke_canary');
    }
    await settled(replica);
  });

  it('fails when the canary cannot be read back where it must land, and still removes it', async () => {
    // As at smoke-test time in a real cutover: replication stopped. The DNS name still points at
    // old (no flip), so the write lands there and never shows up on new.
    await replica.query('STOP SLAVE');
    try {
      h = createHarness({ mode: 'live', env, databases });
      const step = await runStep(h, smokeTest, {
        canary: { on: 'app', setupOn: 'old', readOn: 'new', mustReach: 'new', readTimeout: '500ms' },
      });
      expect(codeOf(step.error)).toBe('SMOKE_TEST_FAILED');
      const msg = messageOf(step.error);
      expect(msg).toMatch(
        /canary: the write through app reached server_id 1 \(\S+\), not new \(server_id 2\) — check the DNS name/,
      );
      expect(msg).toMatch(
        /canary row not found on database "new" \(127\.0\.0\.3:\d+\) within 500ms \(nor its table\) — the write did not reach it/,
      );
      expect(await canaryTables(old)).toBe(0);
      const id = (step.snapshot as { canaryId: string }).canaryId;
      expect(id).toMatch(/^ops-harness\/smoke\.test\/[0-9a-f]{8}$/);
    } finally {
      await replica.query('START SLAVE');
    }
    await settled(replica);
    expect(await canaryTables(replica)).toBe(0);
  });

  it('a query that reaches a missing table or a differing count fails, naming it', async () => {
    h = createHarness({ mode: 'live', env, databases });
    const count = async (c: Connection) =>
      Number(((await c.query('SELECT COUNT(*) AS n FROM products'))[0] as { n: number }[])[0]!.n);
    for (let i = 0; i < 100 && (await count(old)) !== (await count(replica)); i++)
      await new Promise((r) => setTimeout(r, 50));
    await replica.query('STOP SLAVE');
    try {
      // Written on old only: new no longer follows.
      await old.query(
        "INSERT INTO products (sku, name, price_cents, stock) VALUES ('SMOKE-ONLY-OLD', 'x', 1, 1)",
      );
      const step = await runStep(h, smokeTest, {
        queries: [{ name: 'missing', on: 'new', sql: 'SELECT COUNT(*) FROM no_such_table' }],
        compare: [{ on: ['old', 'new'], table: 'products' }],
      });
      expect(codeOf(step.error)).toBe('SMOKE_TEST_FAILED');
      expect(messageOf(step.error)).toMatch(
        /missing: database "new" \(127\.0\.0\.3:\d+\): Table 'shop\.no_such_table' doesn't exist/,
      );
      expect(messageOf(step.error)).toMatch(/rows in products: old vs new: (\d+) vs (\d+) \(difference 1\)/);
    } finally {
      await replica.query('START SLAVE');
    }
  });

  it('dry run: the canary write is recorded, not made; nothing to read back', async () => {
    h = createHarness({ mode: 'dry', env, databases });
    const step = await runStep(h, smokeTest, { canary: { on: 'app', setupOn: 'old', readOn: 'new' } });
    expect(step.error).toBeUndefined();
    expect(h.planLines().map((l) => l.replace(/:\d+\)/g, ':PORT)').replace(/ops-harness\S+/, 'ID'))).toEqual([
      'would create canary table cutover_smoke_canary on database "old" (127.0.0.2:PORT)',
      'would insert canary row into cutover_smoke_canary on database "app" (db.sandbox.internal:PORT): ID',
    ]);
    expect(await canaryTables(old)).toBe(0);
  });
});
