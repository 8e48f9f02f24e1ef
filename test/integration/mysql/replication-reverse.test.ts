import { describe, expect, it } from 'vitest';
import { resetAroundEach, testEnv } from './env.js';
import { connect, createHarness, kind, one, runStep, serverState, undoStep } from './harness.js';

const env = testEnv();

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!env)('mysql.replication.reverse on the sandbox', () => {
  const e = env!;
  resetAroundEach(e);

  it('old replicates the writes new takes after the cutover; then the whole rollback loses none and restores both servers', async () => {
    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      const start = { old: await serverState(o), new: await serverState(n) };
      const h = createHarness({ mode: 'live', env: e });
      const stop = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' });
      const rev = await runStep(h, 'mysql.replication.reverse', {
        source: 'new',
        replica: 'old',
        replicationAccount: 'repl',
      });
      expect(rev.outputs).toMatchObject({
        sourceHost: e.SANDBOX_NEW_DB_HOST,
        sourcePort: Number(e.SANDBOX_DB_PORT),
        alreadyRunning: false,
      });
      const k = kind('mysql.replication.reverse');
      expect(await k.isRollbackSafe!(h.ctx(), rev.params, rev.snapshot, rev.outputs)).toBe(true);
      await h.close();

      // The application writes on the new primary; the old one receives it.
      const app = await connect(e, 'new', 'app');
      await app.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (2, 4242, '2024-07-01')",
      );
      await app.end();
      await waitFor(
        'the write on old',
        async () =>
          (await one<{ c: number }>(o, 'SELECT COUNT(*) AS c FROM orders WHERE total_cents = 4242')).c === 1,
      );
      expect(await serverState(o)).toMatchObject({
        readOnly: '1',
        io: 'Yes',
        sql: 'Yes',
        masterHost: e.SANDBOX_NEW_DB_HOST,
      });

      // Rollback in reverse order, each undo from the journaled snapshot in a fresh process.
      await undoStep(e, 'mysql.replication.reverse', rev);
      expect(await serverState(o)).toMatchObject({ io: null, sql: null, masterHost: null });
      await undoStep(e, 'mysql.replication.stop', stop);
      const end = { old: await serverState(o), new: await serverState(n) };
      expect(end.old).toMatchObject({ readOnly: start.old.readOnly, io: null });
      expect(end.new).toMatchObject({
        readOnly: start.new.readOnly,
        io: 'Yes',
        sql: 'Yes',
        masterHost: start.new.masterHost,
      });
      // No write lost: it is on old (the primary again) and new still has it.
      expect(
        (await one<{ c: number }>(o, 'SELECT COUNT(*) AS c FROM orders WHERE total_cents = 4242')).c,
      ).toBe(1);
      // And old → new replication works again.
      await o.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (3, 4343, '2024-07-02')",
      );
      await waitFor(
        'the write on new',
        async () =>
          (await one<{ c: number }>(n, 'SELECT COUNT(*) AS c FROM orders WHERE total_cents = 4343')).c === 1,
      );
      expect(await serverState(n)).toMatchObject({ io: 'Yes', sql: 'Yes' });
    } finally {
      await o.end();
      await n.end();
    }
  }, 60_000);

  it('undo stops and resets it (twice is fine); isRollbackSafe is false once it is gone', async () => {
    const h = createHarness({ mode: 'live', env: e });
    await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' });
    const rev = await runStep(h, 'mysql.replication.reverse', {
      source: 'new',
      replica: 'old',
      replicationAccount: 'repl',
    });
    await undoStep(e, 'mysql.replication.reverse', rev);
    await undoStep(e, 'mysql.replication.reverse', rev);
    const k = kind('mysql.replication.reverse');
    expect(await k.isRollbackSafe!(h.ctx(), rev.params, rev.snapshot, rev.outputs)).toBe(false);
    await h.close();
    const o = await connect(e, 'old');
    const [rows] = await o.query('SHOW SLAVE STATUS');
    expect(rows).toEqual([]);
    await o.end();
  }, 60_000);

  it('refuses when old has transactions new lacks (diverged)', async () => {
    const h = createHarness({ mode: 'live', env: e });
    try {
      await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' });
      // A privileged write on the frozen old server that never reached new.
      const o = await connect(e, 'old');
      await o.query("INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 1, '2024-07-03')");
      await o.end();
      const err = await runStep(h, 'mysql.replication.reverse', {
        source: 'new',
        replica: 'old',
        replicationAccount: 'repl',
      }).then(
        () => undefined,
        (x: { code: string; message: string }) => x,
      );
      expect(err?.code).toBe('DIVERGED');
      expect(err?.message).toMatch(
        /^database "old" \(.+\) has transactions database "new" \(.+\) does not \(old at 0-1-\d+; new has .+\)/,
      );
    } finally {
      await h.close();
    }
  }, 60_000);

  it('dry run shows the CHANGE MASTER without the password', async () => {
    const h = createHarness({ mode: 'dry', env: e });
    await runStep(h, 'mysql.replication.reverse', {
      source: 'new',
      replica: 'old',
      replicationAccount: 'repl',
    }).finally(() => h.close());
    const lines = h.planLines();
    expect(lines).toEqual([
      `would configure replication on old from new (${e.SANDBOX_NEW_DB_HOST}:${e.SANDBOX_DB_PORT} as ${e.SANDBOX_DB_USER}): CHANGE MASTER TO MASTER_HOST='${e.SANDBOX_NEW_DB_HOST}', MASTER_PORT=${e.SANDBOX_DB_PORT}, MASTER_USER='${e.SANDBOX_DB_USER}', MASTER_PASSWORD='***', MASTER_USE_GTID=current_pos`,
      'would run START REPLICA on old',
    ]);
    expect(lines.join('\n')).not.toContain(e.SANDBOX_DB_PASSWORD!);
  }, 60_000);
});
