// C5 + C6 at kind level: the managed freeze (account lock), reverse replication by GTID or by
// file/position, and its undo that fences and drains the new primary before removing the safety net.
import type { Connection } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resetAroundEach } from './env.js';
import { connect, createHarness, type Env, fails, one, runStep, serverState, undoStep } from './harness.js';
import {
  count,
  loginError,
  preparePlatform,
  restorePlatform,
  rootConnection,
  serviceWrites,
  TARGETS,
  useFilePosition,
} from './platform.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function appLogin(e: Env, role: 'old' | 'new'): Promise<string> {
  try {
    const c = await connect(e, role, 'app');
    await c.end();
    return 'ok';
  } catch (x) {
    return loginError(x);
  }
}

/** An application pool pinned to new: inserts in a loop, reconnecting after errors, counting acks. */
function pinnedWriter(e: Env) {
  const acks: number[] = [];
  const errors: string[] = [];
  let stopped = false;
  let seq = 0;
  const loop = (async () => {
    let c: Connection | undefined;
    while (!stopped) {
      try {
        c ??= await connect(e, 'new', 'app');
        const v = 20_000 + seq++;
        await c.query(
          "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (2, ?, '2024-08-01')",
          [v],
        );
        acks.push(v);
      } catch (x) {
        errors.push(loginError(x));
        c?.destroy();
        c = undefined;
        await sleep(20);
      }
      await sleep(5);
    }
    c?.destroy();
  })();
  return {
    acks,
    errors,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

async function pinnedRows(c: Connection): Promise<number[]> {
  const [rows] = await c.query('SELECT total_cents AS v FROM orders WHERE total_cents >= 20000 ORDER BY 1');
  return (rows as { v: number }[]).map((r) => Number(r.v));
}

for (const target of TARGETS)
  describe.skipIf(!target.env)(
    `rollback after the flip on the ${target.name} sandbox (account-lock freeze, reverse replication)`,
    () => {
      const e = target.env!;
      const managed = target.name === 'managed';
      resetAroundEach(e);
      beforeEach(() => preparePlatform(e));
      afterEach(() => restorePlatform(e));

      it('C5: reverse replication by file/position replicates a write new → old, without replaying the tool’s unlock', async () => {
        await useFilePosition(e);
        const h = createHarness({ mode: 'live', env: e });
        const o = await rootConnection(e, 'old');
        try {
          const stop = await runStep(h, 'mysql.replication.stop', {
            source: 'old',
            replica: 'new',
            freeze: 'account-lock',
            accounts: ['app'],
          });
          expect(stop.outputs).toMatchObject({ replicationMode: 'position', lockedAccounts: ['app@%'] });
          expect(await appLogin(e, 'old')).toBe('LOCKED');
          expect(await appLogin(e, 'new')).toBe('ok');
          const rev = await runStep(h, 'mysql.replication.reverse', {
            source: 'new',
            replica: 'old',
            replicationAccount: 'repl',
            startFile: stop.outputs.switchFile,
            startPos: stop.outputs.switchPos,
            frozenFile: stop.outputs.sourceFile,
            frozenPos: stop.outputs.sourcePos,
            accounts: ['app'],
          });
          expect(rev.outputs.startedAt).toMatch(/^mysql-bin\.\d+:\d+$/);
          // The ACCOUNT UNLOCK on new right after the switch is not replayed on old.
          // (the managed platform's heartbeat may sit there too: service writes as well)
          expect((rev.outputs.skipped as string[]).length).toBeGreaterThanOrEqual(1);
          const app = await connect(e, 'new', 'app');
          await app.query(
            "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (2, 6161, '2024-07-01')",
          );
          await app.end();
          for (let i = 0; i < 100 && (await count(o, 6161)) === 0; i++) await sleep(50);
          expect(await count(o, 6161)).toBe(1);
          const st = await one<Record<string, string>>(o, 'SHOW SLAVE STATUS');
          expect(st).toMatchObject({ Using_Gtid: 'No', Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes' });
          expect(await appLogin(e, 'old')).toBe('LOCKED');
        } finally {
          await o.end();
          await h.close();
        }
      }, 60_000);

      it('dry run of the account-lock freeze: reads for real, records the lock and unlock, changes nothing', async () => {
        const o = await rootConnection(e, 'old');
        const n = await rootConnection(e, 'new');
        try {
          // The managed servers' GTID positions move on their own (the rdsadmin heartbeat event).
          const state = async () => {
            const st = { old: await serverState(o), new: await serverState(n) };
            return managed
              ? {
                  old: { ...st.old, gtidBinlogPos: '', gtidSlavePos: '' },
                  new: { ...st.new, gtidBinlogPos: '', gtidSlavePos: '' },
                }
              : st;
          };
          const before = await state();
          const h = createHarness({ mode: 'dry', env: e });
          await runStep(h, 'mysql.replication.stop', {
            source: 'old',
            replica: 'new',
            freeze: 'account-lock',
            accounts: ['app'],
          }).finally(() => h.close());
          expect(h.planLines()).toEqual([
            'would ALTER USER app@% on old: freeze the source: no new logins of the application (unlocked → ACCOUNT LOCK)',
            `would run ${managed ? 'CALL mysql.rds_stop_replication' : 'STOP REPLICA'} on new: after it has executed old's final position`,
            'would ALTER USER app@% on new: the lock replicated here: the new primary takes the logins (locked → ACCOUNT UNLOCK)',
            // The managed new side is writable already (an Aurora writer).
            ...(managed
              ? []
              : ['would SET GLOBAL read_only = OFF on new: the replica takes the writes (ON → OFF)']),
          ]);
          expect(await state()).toEqual(before);
          expect(await appLogin(e, 'old')).toBe('ok');
        } finally {
          await o.end();
          await n.end();
        }
      }, 60_000);

      it('C6: when something outside the fence still writes on new, reverse replication is kept and the rollback stops there', async () => {
        const h = createHarness({ mode: 'live', env: e });
        const o = await rootConnection(e, 'old');
        let stop = false;
        const writer = (async () => {
          const c = await rootConnection(e, 'new');
          for (let i = 0; !stop; i++) {
            await c.query(
              "INSERT INTO orders (customer_id, total_cents, created_at) VALUES (3, ?, '2024-09-09')",
              [30_000 + i],
            );
            await sleep(30);
          }
          await c.end();
        })();
        try {
          const st = await runStep(h, 'mysql.replication.stop', {
            source: 'old',
            replica: 'new',
            freeze: 'account-lock',
            accounts: ['app'],
          });
          const rev = await runStep(h, 'mysql.replication.reverse', {
            source: 'new',
            replica: 'old',
            replicationAccount: 'repl',
            startFile: st.outputs.switchFile,
            startPos: st.outputs.switchPos,
            mode: 'position',
            accounts: ['app'],
            quiet: '300ms',
          });
          const err = await fails(undoStep(e, 'mysql.replication.reverse', rev));
          // The engine stops undoing at an UNDO_UNSAFE_* refusal: DNS is not pointed back at old.
          expect(err.code).toBe('UNDO_UNSAFE_NEW_NOT_FENCED');
          expect(err.message).toMatch(/still took \d+ application writes? to shop\.orders/);
          expect(await serverState(o)).toMatchObject({
            io: 'Yes',
            sql: 'Yes',
            masterHost: e.SANDBOX_NEW_DB_HOST,
          });
        } finally {
          stop = true;
          await writer;
          await o.end();
          await h.close();
        }
      }, 60_000);

      for (const gtid of [true, false]) {
        const mode = gtid ? 'GTID on' : 'GTID off';
        it(`C6: after reverse replication's undo, an app connection pinned to new cannot write, and every write new took is on old (${mode})`, async () => {
          if (!gtid) await useFilePosition(e);
          const h = createHarness({ mode: 'live', env: e });
          const o = await rootConnection(e, 'old');
          const n = await rootConnection(e, 'new');
          const svc = serviceWrites(e, 'new');
          let w: ReturnType<typeof pinnedWriter> | undefined;
          try {
            const start = { old: await serverState(o), new: await serverState(n) };
            const stop = await runStep(h, 'mysql.replication.stop', {
              source: 'old',
              replica: 'new',
              freeze: 'account-lock',
              accounts: ['app'],
            });
            const rev = await runStep(h, 'mysql.replication.reverse', {
              source: 'new',
              replica: 'old',
              replicationAccount: 'repl',
              ...(gtid ? { mode: 'gtid', startGtid: stop.outputs.switchGtid } : {}),
              startFile: stop.outputs.switchFile,
              startPos: stop.outputs.switchPos,
              frozenFile: stop.outputs.sourceFile,
              frozenPos: stop.outputs.sourcePos,
              accounts: ['app'],
              quiet: '300ms',
            });
            await h.close();
            // The application writes to new through a pinned pool, plus rdsadmin heartbeats on new.
            w = pinnedWriter(e);
            while (w.acks.length < 20) await sleep(20);

            await undoStep(e, 'mysql.replication.reverse', rev);
            const acksAtUndo = w.acks.length;
            await sleep(300);
            // The pinned pool was ended and cannot come back: nothing more lands on new.
            expect(w.acks.length).toBe(acksAtUndo);
            expect(w.errors).toContain('LOCKED');
            // Only the kill and the lock stop it (mysql2 reports a killed connection one way or another).
            expect(w.errors.filter((x) => !/^LOCKED$|PROTOCOL_CONNECTION_LOST|closed state/.test(x))).toEqual(
              [],
            );
            await w.stop();
            const onNew = await pinnedRows(n);
            const onOld = await pinnedRows(o);
            expect(onNew.length).toBeGreaterThanOrEqual(20);
            expect(onOld).toEqual(onNew);
            for (const v of w.acks) expect(onOld).toContain(v);
            // The safety net is gone only now, and old is still frozen.
            expect(await serverState(o)).toMatchObject({ io: null, masterHost: null });
            expect(await appLogin(e, 'old')).toBe('LOCKED');

            // DNS points back (not modelled here); stop-replication's undo reopens old: old has it all.
            await undoStep(e, 'mysql.replication.stop', stop);
            expect(await appLogin(e, 'old')).toBe('ok');
            const end = { old: await serverState(o), new: await serverState(n) };
            expect(end.old.readOnly).toBe(start.old.readOnly);
            expect(end.new).toMatchObject({ readOnly: start.new.readOnly, io: 'Yes', sql: 'Yes' });
            for (let i = 0; i < 100 && (await appLogin(e, 'new')) !== 'ok'; i++) await sleep(50);
            expect(await appLogin(e, 'new')).toBe('ok');
          } finally {
            await w?.stop();
            await svc.stop();
            await h.close();
            await o.end();
            await n.end();
          }
        }, 60_000);
      }
    },
  );
