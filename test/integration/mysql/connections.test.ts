import { describe, expect, it } from 'vitest';
import { resetAroundEach, testEnv } from './env.js';
import { connect, createHarness, fails, one, runStep } from './harness.js';

const env = testEnv();

describe.skipIf(!env)('mysql.connections / mysql.connections.drain on the sandbox', () => {
  const e = env!;
  // The sandbox's own services keep a session of the tool's account on old (its security-group fence).
  const tool = [e?.SANDBOX_DB_USER ?? 'cutover'];
  resetAroundEach(e);

  it('lists client sessions by user@host, without replication threads or the tool itself', async () => {
    const app = await connect(e, 'old', 'app');
    try {
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.connections', { on: 'old', allowUsers: tool }).finally(() =>
        h.close(),
      );
      expect(run.outputs.summary).toMatch(/^app@127\.0\.0\.\d+ ×1 \(Sleep, \d+s\)$/);
      expect(run.outputs.count).toBe(1);
    } finally {
      await app.end();
    }
  }, 60_000);

  it('names a session the app account left open, and fails when it does not go', async () => {
    const app = await connect(e, 'old', 'app');
    try {
      const h = createHarness({ mode: 'live', env: e });
      const err = await fails(
        runStep(h, 'mysql.connections.drain', {
          on: 'old',
          allowUsers: tool,
          timeout: '1s',
          quiet: '0',
        }).finally(() => h.close()),
      );
      expect(err.code).toBe('SESSIONS_REMAIN');
      expect(err.message).toMatch(
        /^database "old" \(.+\): 1 client session\(s\) still connected after 1\.0s: app@127\.0\.0\.\d+ ×1 \(Sleep, \d+s\) — end them \(kill: true\), or add them to allowUsers$/,
      );
      // Still there: nothing was killed.
      expect(await one(app, 'SELECT 1 AS x')).toEqual({ x: 1 });
    } finally {
      await app.end().catch(() => undefined);
    }
  }, 60_000);

  it('kills it when told, after the grace period, and proves the fence', async () => {
    const app = await connect(e, 'old', 'app');
    const appId = (await one<{ id: number }>(app, 'SELECT CONNECTION_ID() AS id')).id;
    const h = createHarness({ mode: 'live', env: e });
    const t0 = Date.now();
    const run = await runStep(h, 'mysql.connections.drain', {
      on: 'old',
      allowUsers: tool,
      kill: true,
      grace: '500ms',
      quiet: '1s',
    }).finally(() => h.close());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(run.outputs.killed).toBe(1);
    expect(run.outputs.killedSessions).toMatch(/^app@127\.0\.0\.\d+ ×1/);
    expect((run.snapshot as { groups: { who: string }[] }).groups.map((g) => g.who)).toEqual([
      expect.stringMatching(/^app@/),
    ]);
    await expect(app.query('SELECT 1')).rejects.toThrow();
    const o = await connect(e, 'old');
    try {
      expect(
        await one(o, 'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ?', [appId]),
      ).toEqual({ n: 0 });
    } finally {
      await o.end();
    }
  }, 60_000);

  it('fails when the binlog position moves during the quiet interval', async () => {
    // An allowed account keeps writing: sessions are drained, but writes are not fenced.
    const writer = await connect(e, 'old');
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        await writer.query(
          "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 1, '2024-06-01')",
        );
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      const h = createHarness({ mode: 'live', env: e });
      const err = await fails(
        runStep(h, 'mysql.connections.drain', {
          on: 'old',
          allowUsers: [e.SANDBOX_DB_USER!],
          quiet: '1s',
        }).finally(() => h.close()),
      );
      expect(err.code).toBe('WRITES_NOT_FENCED');
      expect(err.message).toMatch(
        /^database "old" \(.+\): the binlog position moved during the 1\.0s quiet interval \(gtid 0-1-\d+, .+ → gtid 0-1-\d+, .+\): something still writes — connected now: cutover@/,
      );
    } finally {
      stop = true;
      await loop;
      await writer.end();
    }
  }, 60_000);

  it('ends sessions that come back while the fence is still taking hold, then proves the quiet interval', async () => {
    // An app writer that reconnects 150 ms after each KILL for the first 1.2 s (a security-group
    // change still propagating), then is kept out: drain must end it again and succeed. The pause
    // lets verify see the server empty and start the quiet interval before the writer is back.
    const until = Date.now() + 1200;
    let stop = false;
    let reconnects = 0;
    const loop = (async () => {
      while (!stop) {
        let c: Awaited<ReturnType<typeof connect>> | undefined;
        try {
          if (Date.now() > until) break;
          c = await connect(e, 'old', 'app');
          reconnects++;
          while (!stop) {
            await c.query(
              "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 1, '2024-06-01')",
            );
            await new Promise((r) => setTimeout(r, 20));
          }
          await c.end();
        } catch {
          await c?.end().catch(() => {});
          await new Promise((r) => setTimeout(r, 150));
        }
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 100));
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.connections.drain', {
        on: 'old',
        allowUsers: tool,
        kill: true,
        grace: '0s',
        quiet: '300ms',
        timeout: '10s',
      }).finally(() => h.close());
      expect(run.outputs.killed).toBeGreaterThanOrEqual(1);
      expect(reconnects).toBeGreaterThanOrEqual(2);
    } finally {
      stop = true;
      await loop;
    }
  }, 60_000);

  it('dry run names who is connected and records the wait and the KILL, killing nothing', async () => {
    const app = await connect(e, 'old', 'app');
    const appId = (await one<{ id: number }>(app, 'SELECT CONNECTION_ID() AS id')).id;
    try {
      const h = createHarness({ mode: 'dry', env: e });
      const t0 = Date.now();
      await runStep(h, 'mysql.connections.drain', {
        on: 'old',
        allowUsers: tool,
        kill: true,
        grace: '30s',
      }).finally(() => h.close());
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(h.planLines()).toEqual([
        expect.stringMatching(
          /^would wait up to 30s for client sessions on old to end: now: app@127\.0\.0\.\d+ ×1 \(Sleep, \d+s\)$/,
        ),
        expect.stringMatching(
          new RegExp(`^would KILL connection ${appId} \\(app@127\\.0\\.0\\.\\d+\\) on old: Sleep for \\d+s$`),
        ),
      ]);
      expect(await one(app, 'SELECT 1 AS x')).toEqual({ x: 1 });
    } finally {
      await app.end();
    }
  }, 60_000);
});
