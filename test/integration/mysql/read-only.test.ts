import { describe, expect, it } from 'vitest';
import { resetAroundEach, testEnv } from './env.js';
import { connect, createHarness, one, runStep, serverState, undoStep } from './harness.js';

const env = testEnv();

describe.skipIf(!env)('mysql.read-only on the sandbox', () => {
  const e = env!;
  resetAroundEach(e);

  it('freezes old against the app account; undo restores the exact previous value', async () => {
    const o = await connect(e, 'old');
    const app = await connect(e, 'old', 'app');
    try {
      const before = await serverState(o);
      expect(before.readOnly).toBe('0');
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.read-only', { on: 'old' }).finally(() => h.close());
      expect(run.snapshot).toMatchObject({ readOnly: false, superReadOnly: null });
      expect((await serverState(o)).readOnly).toBe('1');
      await expect(
        app.query("INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 1, '2024-01-01')"),
      ).rejects.toMatchObject({ errno: 1290 });
      await undoStep(e, 'mysql.read-only', run);
      expect(await serverState(o)).toEqual(before);
      await undoStep(e, 'mysql.read-only', run);
      expect(await serverState(o)).toEqual(before);
    } finally {
      await o.end();
      await app.end();
    }
  }, 60_000);

  it('unsetting read_only on new is undone back to ON', async () => {
    const n = await connect(e, 'new');
    try {
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.read-only', { on: 'new', readOnly: false }).finally(() =>
        h.close(),
      );
      expect((await serverState(n)).readOnly).toBe('0');
      await undoStep(e, 'mysql.read-only', run);
      expect((await serverState(n)).readOnly).toBe('1');
    } finally {
      await n.end();
    }
  }, 60_000);

  it('a LOCK TABLES holder makes it fail after lockWaitTimeout instead of queueing writes behind it', async () => {
    const locker = await connect(e, 'old');
    await locker.query('LOCK TABLES orders WRITE');
    try {
      const h = createHarness({ mode: 'live', env: e });
      const t0 = Date.now();
      const err = await runStep(h, 'mysql.read-only', { on: 'old', lockWaitTimeout: '1s' })
        .finally(() => h.close())
        .then(
          () => undefined,
          (x: { code: string; message: string }) => x,
        );
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(err?.code).toBe('READ_ONLY_BLOCKED');
      expect(err?.message).toMatch(
        /^database "old" \(.+\): SET GLOBAL read_only waited 1s for locks held by .+ — end them or set killBlockers: true$/,
      );
      const o = await connect(e, 'old');
      expect((await serverState(o)).readOnly).toBe('0');
      await o.end();
    } finally {
      await locker.query('UNLOCK TABLES').catch(() => undefined);
      await locker.end().catch(() => undefined);
    }
  }, 60_000);

  it('names a long-running write that blocks it, and ends it with killBlockers', async () => {
    for (const killBlockers of [false, true]) {
      const app = await connect(e, 'old', 'app');
      const appId = (await one<{ id: number }>(app, 'SELECT CONNECTION_ID() AS id')).id;
      const slow = app
        .query("INSERT INTO orders (customer_id, total_cents, created_at) SELECT 1, SLEEP(4), '2024-01-01'")
        .then(
          () => 'done',
          (x: { code?: string }) => x.code ?? 'error',
        );
      await new Promise((r) => setTimeout(r, 1200));
      const h = createHarness({ mode: 'live', env: e });
      const t0 = Date.now();
      const res = await runStep(h, 'mysql.read-only', { on: 'old', lockWaitTimeout: '1s', killBlockers })
        .finally(() => h.close())
        .then(
          (r) => r,
          (x: { code: string; message: string }) => x,
        );
      expect(Date.now() - t0).toBeLessThan(3000);
      if (killBlockers) {
        expect((res as unknown as { outputs: { killed: number } }).outputs.killed).toBe(1);
        expect(await slow).toBe('PROTOCOL_CONNECTION_LOST');
        const o = await connect(e, 'old');
        expect((await serverState(o)).readOnly).toBe('1');
        await o.end();
      } else {
        expect(res).toMatchObject({ code: 'READ_ONLY_BLOCKED' });
        expect((res as { message: string }).message).toMatch(
          new RegExp(
            `: SET GLOBAL read_only waited 1s for locks held by app@127\\.0\\.0\\.\\d+ \\(id ${appId}: running a INSERT for \\ds\\) — end them or set killBlockers: true$`,
          ),
        );
        expect(h.warnings).toEqual([expect.stringMatching(/sessions that may block read_only: app@/)]);
        expect(await slow).toBe('done');
      }
      await app.end().catch(() => undefined);
    }
  }, 60_000);

  it('dry run records the change with its previous value', async () => {
    const h = createHarness({ mode: 'dry', env: e });
    await runStep(h, 'mysql.read-only', { on: 'old' }).finally(() => h.close());
    expect(h.planLines()).toEqual(['would SET GLOBAL read_only = ON on old: freeze old (OFF → ON)']);
    const o = await connect(e, 'old');
    expect((await one<{ ro: number }>(o, 'SELECT @@read_only AS ro')).ro).toBe(0);
    await o.end();
  }, 60_000);
});
