import { describe, expect, it } from 'vitest';
import { resetAroundEach, testEnv } from './env.js';
import { connect, createHarness, one, replicaCaughtUp, runStep, serverState, undoStep } from './harness.js';
import { createWritesTable, lostWrites, Writer } from './writer.js';

const env = testEnv();

describe.skipIf(!env)('mysql.replication.stop on the sandbox', () => {
  const e = env!;
  resetAroundEach(e);

  it('under a concurrent writer: completes, loses no acknowledged insert, and the writer moves to new', async () => {
    await createWritesTable(e);
    await replicaCaughtUp(e);
    const w = new Writer(e, 2);
    await w.start();
    await w.started;
    await new Promise((r) => setTimeout(r, 300));
    const h = createHarness({ mode: 'live', env: e });
    let run: Awaited<ReturnType<typeof runStep>>;
    try {
      run = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' });
    } finally {
      await h.close();
    }
    // Let the writer land a few inserts on the new primary.
    await new Promise((r) => setTimeout(r, 300));
    const res = await w.stop();
    const onOld = res.acks.filter((a) => a.server === 'old').length;
    const onNew = res.acks.filter((a) => a.server === 'new').length;
    expect(onOld).toBeGreaterThan(50);
    expect(onNew).toBeGreaterThan(0);
    expect(res.otherErrors).toEqual([]);
    expect(await lostWrites(e, res.acks)).toEqual([]);
    expect(res.windowMs).toBeGreaterThan(0);
    expect(run.outputs.sourceGtid).toMatch(/^0-1-\d+$/);
    expect(run.outputs.frozenMs).toBeLessThan(1000);

    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      const so = await serverState(o);
      const sn = await serverState(n);
      expect(so.readOnly).toBe('1');
      expect(sn).toMatchObject({ readOnly: '0', io: 'No', sql: 'No' });
      // The final position the step journaled is the old server's, and the replica executed it.
      expect(so.gtidBinlogPos).toBe(run.outputs.sourceGtid);
      expect(run.outputs.replicaGtid).toBe(run.outputs.sourceGtid);
    } finally {
      await o.end();
      await n.end();
    }
  }, 60_000);

  it('undo restores read_only on both sides and restarts replication from the recorded position', async () => {
    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      await o.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 100, '2024-05-01')",
      );
      await replicaCaughtUp(e);
      const before = { old: await serverState(o), new: await serverState(n) };
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' }).finally(() =>
        h.close(),
      );
      expect((await serverState(n)).io).toBe('No');
      // C5: new's own coordinates when it became the primary (nothing has written there since).
      const nm = await one<{ File: string; Position: number }>(n, 'SHOW MASTER STATUS');
      expect(run.outputs).toMatchObject({
        switchFile: nm.File,
        switchPos: Number(nm.Position),
        switchGtid: (await serverState(n)).gtidBinlogPos,
        sourceFile: expect.any(String),
        replicationMode: 'gtid',
      });

      await undoStep(e, 'mysql.replication.stop', run);
      const after = { old: await serverState(o), new: await serverState(n) };
      expect(after).toEqual(before);
      // Replication really runs again: a new write on old arrives on new.
      await o.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (2, 200, '2024-05-02')",
      );
      await replicaCaughtUp(e);
      expect(
        (await one<{ n: number }>(n, 'SELECT COUNT(*) AS n FROM orders WHERE total_cents = 200')).n,
      ).toBe(1);
      // Undo is safe to call twice.
      await undoStep(e, 'mysql.replication.stop', run);
      expect(await serverState(o)).toMatchObject({ readOnly: '0' });
      expect(await serverState(n)).toMatchObject({ readOnly: '1', io: 'Yes', sql: 'Yes' });
    } finally {
      await o.end();
      await n.end();
    }
  }, 60_000);

  it('undo refuses once the new primary took writes the old one lacks, and leaves both as found', async () => {
    const h = createHarness({ mode: 'live', env: e });
    const run = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' }).finally(() =>
      h.close(),
    );
    const app = await connect(e, 'new', 'app');
    await app.query(
      "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (3, 999, '2024-05-03')",
    );
    await app.end();
    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      const before = { old: await serverState(o), new: await serverState(n) };
      const err = await undoStep(e, 'mysql.replication.stop', run).then(
        () => undefined,
        (x: unknown) => x as { code: string; message: string },
      );
      expect(err?.code).toBe('UNDO_UNSAFE_NEW_WRITES');
      expect(err?.message).toMatch(
        /database "new" \(.+\) has taken 1 application write to shop\.orders \(0-2-\d+\) since it became the primary that old does not have/,
      );
      expect({ old: await serverState(o), new: await serverState(n) }).toEqual(before);
    } finally {
      await o.end();
      await n.end();
    }
  }, 60_000);

  it('a replica that cannot catch up in time fails the step; its undo unfreezes old and leaves replication running', async () => {
    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      await n.query('STOP SLAVE');
      await n.query('CHANGE MASTER TO MASTER_DELAY = 30');
      await n.query('START SLAVE');
      for (let i = 0; i < 100 && (await serverState(n)).io !== 'Yes'; i++)
        await new Promise((r) => setTimeout(r, 50));
      await o.query("INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 7, '2024-09-01')");
      const before = { old: await serverState(o), new: await serverState(n) };
      const h = createHarness({ mode: 'live', env: e });
      const err = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new', timeout: '1s' })
        .finally(() => h.close())
        .then(
          () => undefined,
          (x: { code: string; message: string; run: { params: unknown; snapshot: unknown } }) => x,
        );
      expect(err?.code).toBe('REPLICA_NOT_CAUGHT_UP');
      expect(err?.message).toMatch(
        /^database "new" \(.+\) did not reach old's position 0-1-\d+ within 1\.0s \(IO Yes, SQL Yes, Seconds_Behind \d+\)/,
      );
      expect((await serverState(o)).readOnly).toBe('1');
      // The engine undoes a failed step that has a snapshot: from the journaled snapshot, no outputs.
      await undoStep(e, 'mysql.replication.stop', { ...err!.run, outputs: undefined as never });
      expect({ old: await serverState(o), new: await serverState(n) }).toEqual(before);
    } finally {
      await o.end();
      await n.end();
    }
  }, 60_000);

  it('freeze: none (writes fenced by other means): the position must hold still, and undo leaves old as it found it', async () => {
    const h = createHarness({ mode: 'live', env: e });
    try {
      const fence = await runStep(h, 'mysql.read-only', { on: 'old' });
      const run = await runStep(h, 'mysql.replication.stop', {
        source: 'old',
        replica: 'new',
        freeze: 'none',
      });
      expect(h.plan).toEqual([]);
      const o = await connect(e, 'old');
      const n = await connect(e, 'new');
      expect(await serverState(n)).toMatchObject({ readOnly: '0', io: 'No', sql: 'No' });
      await undoStep(e, 'mysql.replication.stop', run);
      expect(await serverState(o)).toMatchObject({ readOnly: '1' });
      expect(await serverState(n)).toMatchObject({ readOnly: '1', io: 'Yes', sql: 'Yes' });
      await undoStep(e, 'mysql.read-only', fence);
      expect(await serverState(o)).toMatchObject({ readOnly: '0' });
      await o.end();
      await n.end();
    } finally {
      await h.close();
    }
  }, 60_000);

  it('dry run reads for real and records the writes, changing nothing', async () => {
    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      const before = { old: await serverState(o), new: await serverState(n) };
      const h = createHarness({ mode: 'dry', env: e });
      const run = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' }).finally(() =>
        h.close(),
      );
      expect(h.planLines()).toEqual([
        'would SET GLOBAL read_only = ON on old: freeze the source (OFF → ON)',
        `would run STOP REPLICA on new: after it has executed old's final position`,
        'would SET GLOBAL read_only = OFF on new: the replica takes the writes (ON → OFF)',
      ]);
      expect(Object.keys(h.stats.writes)).toEqual([]);
      expect(run.outputs.sourceGtid).toBe(before.old.gtidBinlogPos);
      expect({ old: await serverState(o), new: await serverState(n) }).toEqual(before);
    } finally {
      await o.end();
      await n.end();
    }
  }, 60_000);
});
