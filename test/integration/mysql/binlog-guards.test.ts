// The "did anything write?" guards against a binlog shaped like a managed platform's: rdsadmin
// heartbeats and rotations count for nothing, application writes fail with their tables and GTIDs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stopHooks } from '../../../src/steps/mysql/replication-stop.js';
import { resetAroundEach, testEnv } from './env.js';
import { connect, createHarness, fails, runStep, serverState, undoStep } from './harness.js';
import {
  count,
  preparePlatform,
  privilegedWrite,
  restorePlatform,
  serviceWrites,
  useFilePosition,
} from './platform.js';

const env = testEnv();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!env)('binlog guards on the sandbox (service writes vs application writes)', () => {
  const e = env!;
  resetAroundEach(e);
  beforeEach(() => preparePlatform(e));
  afterEach(() => restorePlatform(e));

  it("M1: the drain's quiet interval passes with service writes and rotation running, and fails on an application write naming it", async () => {
    const svc = serviceWrites(e, 'old');
    const h = createHarness({ mode: 'live', env: e });
    try {
      await sleep(100);
      const ok = await runStep(h, 'mysql.connections.drain', {
        on: 'old',
        quiet: '600ms',
        timeout: '2s',
        allowUsers: [e.SANDBOX_DB_USER!],
      });
      expect(ok.outputs.killed).toBe(0);
      expect(h.logs.join('\n')).toMatch(
        /quiet for 600ms: \d+ service writes? \(mysql\.rds_heartbeat2\) ignored; \d+ binlog rotations? ignored/,
      );

      // An allowlisted account writes during the interval: the guard names the table and GTID.
      const late = sleep(200).then(() => privilegedWrite(e, 'old', 31337));
      const err = await fails(
        runStep(h, 'mysql.connections.drain', {
          on: 'old',
          quiet: '800ms',
          timeout: '2s',
          allowUsers: [e.SANDBOX_DB_USER!],
        }),
      );
      await late;
      expect(err.code).toBe('WRITES_NOT_FENCED');
      expect(err.message).toMatch(/1 application write to shop\.orders \(0-1-\d+\)/);
      expect(err.message).toMatch(/service writes? \(mysql\.rds_heartbeat2\) ignored/);
    } finally {
      await svc.stop();
      await h.close();
    }
  }, 60_000);

  for (const gtid of [true, false]) {
    const mode = gtid ? 'GTID on' : 'GTID off';

    it(`C4: a write between the freeze and the stop is detected (${mode})`, async () => {
      if (!gtid) await useFilePosition(e);
      const svc = serviceWrites(e, 'old');
      // Deterministic: the hook runs after the replica reached the frozen position, before the stop;
      // the writer bypasses the freeze (READ ONLY ADMIN), as an allowlisted account would.
      stopHooks.beforeStop = () => privilegedWrite(e, 'old', 4444);
      const h = createHarness({ mode: 'live', env: e });
      try {
        const err = (await fails(
          runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' }),
        )) as { code: string; message: string; run?: { outputs: Record<string, unknown> } };
        expect(err.code).toBe('WRITES_AFTER_FREEZE');
        expect(err.message).toMatch(/1 application write to shop\.orders \(0-1-\d+\)/);
        const out = err.run!.outputs;
        // The guard's coordinates are the frozen ones, not those read after the stop.
        expect(out.sourceFile).toEqual(expect.any(String));
        expect(`${out.sourceStoppedFile}:${out.sourceStoppedPos}`).not.toBe(
          `${out.sourceFile}:${out.sourcePos}`,
        );
        expect(out.replicationMode).toBe(gtid ? 'gtid' : 'position');
      } finally {
        stopHooks.beforeStop = undefined;
        await svc.stop();
        await h.close();
      }
    }, 60_000);

    it(`M1: service writes between the freeze and the stop do not fail it (${mode})`, async () => {
      if (!gtid) await useFilePosition(e);
      stopHooks.beforeStop = async () => {
        const svc = serviceWrites(e, 'old', 10);
        await sleep(100);
        await svc.stop();
      };
      const h = createHarness({ mode: 'live', env: e });
      try {
        await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' });
        expect(h.logs.join('\n')).toMatch(
          /no application write after the freeze \(\d+ service writes? \(mysql\.rds_heartbeat2\) ignored/,
        );
      } finally {
        stopHooks.beforeStop = undefined;
        await h.close();
      }
    }, 60_000);
  }

  it('C5: undo detects the new side’s application writes with GTID off, and ignores its service writes (M10)', async () => {
    await useFilePosition(e);
    const h = createHarness({ mode: 'live', env: e });
    const run = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' }).finally(() =>
      h.close(),
    );
    expect(run.outputs).toMatchObject({ replicationMode: 'position', switchFile: expect.any(String) });
    const n = await connect(e, 'new');
    const o = await connect(e, 'old');
    try {
      // Service writes only (rdsadmin heartbeats, rotations): the undo goes ahead.
      const svc = serviceWrites(e, 'new');
      await sleep(200);
      await svc.stop();
      const app = await connect(e, 'new', 'app');
      await app.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 777, '2024-06-02')",
      );
      await app.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 778, '2024-06-02')",
      );
      await app.end();
      const before = { old: await serverState(o), new: await serverState(n) };
      const err = await fails(undoStep(e, 'mysql.replication.stop', run));
      expect(err.code).toBe('UNDO_UNSAFE_NEW_WRITES');
      expect(err.message).toMatch(
        /has taken 2 application writes to shop\.orders \(0-2-\d+, 0-2-\d+\) since it became the primary that old does not have/,
      );
      expect({ old: await serverState(o), new: await serverState(n) }).toEqual(before);
      expect(await count(n, 777)).toBe(1);
    } finally {
      await n.end();
      await o.end();
    }
  }, 60_000);

  it('M10: with only service writes on the new side, undo restarts file/position replication', async () => {
    await useFilePosition(e);
    const h = createHarness({ mode: 'live', env: e });
    const run = await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' }).finally(() =>
      h.close(),
    );
    const svc = serviceWrites(e, 'new');
    await sleep(200);
    await svc.stop();
    await undoStep(e, 'mysql.replication.stop', run);
    const n = await connect(e, 'new');
    const o = await connect(e, 'old');
    try {
      expect(await serverState(n)).toMatchObject({ readOnly: '1', io: 'Yes', sql: 'Yes' });
      await o.query(
        "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 515, '2024-06-03')",
      );
      for (let i = 0; i < 100 && (await count(n, 515)) === 0; i++) await sleep(50);
      expect(await count(n, 515)).toBe(1);
    } finally {
      await n.end();
      await o.end();
    }
  }, 60_000);
});
