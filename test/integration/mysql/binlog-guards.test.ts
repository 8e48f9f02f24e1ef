// The "did anything write?" guards against a binlog shaped like a managed platform's: rdsadmin
// heartbeats and rotations count for nothing, application writes fail with their tables and GTIDs.
// Each test runs on the self-managed sandbox and on the managed one (--platform rds).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stopHooks } from '../../../src/steps/mysql/replication-stop.js';
import { resetAroundEach } from './env.js';
import { connect, createHarness, fails, runStep, serverState, undoStep } from './harness.js';
import {
  count,
  preparePlatform,
  privilegedWrite,
  restorePlatform,
  rootConnection,
  serviceWrites,
  TARGETS,
  useFilePosition,
} from './platform.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const target of TARGETS) {
  describe.skipIf(!target.env)(`binlog guards on the ${target.name} sandbox`, () => {
    const e = target.env!;
    resetAroundEach(e);
    beforeEach(() => preparePlatform(e));
    afterEach(() => restorePlatform(e));
    // RDS refuses SET GLOBAL read_only: the managed freeze locks the application's accounts.
    const freeze =
      target.name === 'managed' ? { freeze: 'account-lock', accounts: [e.SANDBOX_APP_DB_USER!] } : {};
    const stopParams = { source: 'old', replica: 'new', ...freeze };
    // The managed servers' binlogs move on their own (rdsadmin heartbeat, the tool's ACCOUNT
    // LOCK/UNLOCK): there, compare everything but the GTID positions.
    const state = async () => {
      const [o, n] = await Promise.all([rootConnection(e, 'old'), rootConnection(e, 'new')]);
      const shown = (s: Awaited<ReturnType<typeof serverState>>) =>
        target.name === 'managed' ? { ...s, gtidBinlogPos: '(moves)', gtidSlavePos: '(moves)' } : s;
      try {
        return { old: shown(await serverState(o)), new: shown(await serverState(n)) };
      } finally {
        await Promise.all([o.end(), n.end()]);
      }
    };

    it("M1: the drain's quiet interval passes with service writes and rotation running, and fails on an application write naming it", async () => {
      const svc = serviceWrites(e, 'old');
      const h = createHarness({ mode: 'live', env: e });
      const allowUsers = [e.SANDBOX_DB_USER!, 'root'];
      try {
        await sleep(100);
        const ok = await runStep(h, 'mysql.connections.drain', {
          on: 'old',
          quiet: '600ms',
          timeout: '2s',
          allowUsers,
        });
        expect(ok.outputs.killed).toBe(0);
        expect(h.logs.join('\n')).toMatch(
          /quiet for 600ms: \d+ service writes? \(mysql\.rds_heartbeat2\) ignored; \d+ binlog rotations? ignored/,
        );
        // An allowlisted account writes during the interval: the guard names the table and GTID.
        const late = sleep(200).then(() => privilegedWrite(e, 'old', 31337));
        const err = await fails(
          runStep(h, 'mysql.connections.drain', { on: 'old', quiet: '800ms', timeout: '2s', allowUsers }),
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
        // Deterministic: the hook runs after the replica reached the frozen position, before the
        // stop; the writer bypasses the freeze, as an allowlisted privileged account would.
        stopHooks.beforeStop = () => privilegedWrite(e, 'old', 4444);
        const h = createHarness({ mode: 'live', env: e });
        try {
          const err = (await fails(runStep(h, 'mysql.replication.stop', stopParams))) as {
            code: string;
            message: string;
            run?: { outputs: Record<string, unknown> };
          };
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
          await runStep(h, 'mysql.replication.stop', stopParams);
          expect(h.logs.join('\n')).toMatch(
            /no application write after the freeze \(\d+ service writes? \(mysql\.rds_heartbeat2(, [^)]+)?\) ignored/,
          );
        } finally {
          stopHooks.beforeStop = undefined;
          await h.close();
        }
      }, 60_000);
    }

    it('M1: reverse replication’s DIVERGED check ignores old’s service writes after the freeze and names an application write', async () => {
      const h = createHarness({ mode: 'live', env: e });
      try {
        const stop = await runStep(h, 'mysql.replication.stop', stopParams);
        const reverse = {
          source: 'new',
          replica: 'old',
          replicationAccount: 'repl',
          frozenFile: stop.outputs.sourceFile,
          frozenPos: stop.outputs.sourcePos,
          ...(target.name === 'managed' ? { accounts: [e.SANDBOX_APP_DB_USER!] } : {}),
        };
        // An application write on the frozen old side (through an account outside the fence).
        await privilegedWrite(e, 'old', 9191);
        const svc = serviceWrites(e, 'old');
        await sleep(200);
        await svc.stop();
        const err = await fails(runStep(h, 'mysql.replication.reverse', reverse));
        expect(err.code).toBe('DIVERGED');
        expect(err.message).toMatch(
          /took 1 application write to shop\.orders \(0-1-\d+\) after it was frozen/,
        );
        expect(err.message).toMatch(/service writes? \(mysql\.rds_heartbeat2[^)]*\) ignored/);
      } finally {
        await h.close();
      }
    }, 60_000);

    it('M1: with only service writes on old after the freeze, reverse replication starts', async () => {
      const h = createHarness({ mode: 'live', env: e });
      try {
        const stop = await runStep(h, 'mysql.replication.stop', stopParams);
        const svc = serviceWrites(e, 'old');
        await sleep(200);
        await svc.stop();
        await runStep(h, 'mysql.replication.reverse', {
          source: 'new',
          replica: 'old',
          replicationAccount: 'repl',
          frozenFile: stop.outputs.sourceFile,
          frozenPos: stop.outputs.sourcePos,
          ...(target.name === 'managed' ? { accounts: [e.SANDBOX_APP_DB_USER!] } : {}),
        });
        expect((await state()).old).toMatchObject({
          io: 'Yes',
          sql: 'Yes',
          masterHost: e.SANDBOX_NEW_DB_HOST,
        });
      } finally {
        await h.close();
      }
    }, 60_000);

    it('C5: undo detects the new side’s application writes with GTID off, and ignores its service writes (M10)', async () => {
      await useFilePosition(e);
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.replication.stop', stopParams).finally(() => h.close());
      expect(run.outputs).toMatchObject({ replicationMode: 'position', switchFile: expect.any(String) });
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
      const before = await state();
      const err = await fails(undoStep(e, 'mysql.replication.stop', run));
      expect(err.code).toBe('UNDO_UNSAFE_NEW_WRITES');
      expect(err.message).toMatch(
        /has taken 2 application writes to shop\.orders \(0-2-\d+, 0-2-\d+\) since it became the primary that old does not have/,
      );
      expect(await state()).toEqual(before);
      // Left as found: the application still logs in on new.
      await (await connect(e, 'new', 'app')).end();
      const n = await rootConnection(e, 'new');
      expect(await count(n, 777)).toBe(1);
      await n.end();
    }, 60_000);

    it('M10: with only service writes on the new side, undo restarts file/position replication', async () => {
      await useFilePosition(e);
      const start = await state();
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.replication.stop', stopParams).finally(() => h.close());
      const svc = serviceWrites(e, 'new');
      await sleep(200);
      await svc.stop();
      await undoStep(e, 'mysql.replication.stop', run);
      expect((await state()).new).toMatchObject({ readOnly: start.new.readOnly, io: 'Yes', sql: 'Yes' });
      const [o, n] = await Promise.all([rootConnection(e, 'old'), rootConnection(e, 'new')]);
      try {
        await o.query(
          "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, 515, '2024-06-03')",
        );
        for (let i = 0; i < 100 && (await count(n, 515)) === 0; i++) await sleep(50);
        expect(await count(n, 515)).toBe(1);
      } finally {
        await o.end();
        await n.end();
      }
    }, 60_000);
  });
}
