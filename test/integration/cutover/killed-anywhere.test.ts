// Must show (issue "Nothing lost, nothing split"), killed at any moment: the CLI is SIGKILLed at
// moments spread over a loaded cutover — not only at step boundaries: inside the drain's quiet
// interval, the flip's INSYNC and TTL waits, reverse replication, smoke, and after the run ended —
// and each kill is followed by `cutover rollback` (odd moments) or `cutover resume` (even ones).
// After a rollback: the start state, and every acknowledged write on the old server, none only on
// the new. After a resume: the cutover finished, and every acknowledged write on the new server.
// Writes are counted by our own rows (root, on both servers), not by the tool.
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { sandboxDatabases } from '../step-harness.js';
import {
  cli,
  hooksDir,
  journalOf,
  killGroup,
  MANAGED,
  removeTemps,
  runArgs,
  SELF,
  show,
  startDetached,
  type Target,
  tempDir,
} from './harness.js';

const TABLE = 'kill_probe';
const MOMENTS = 6;

async function rowsOn(socket: string, db: string): Promise<Set<string>> {
  const c = await rootConnection(socket);
  try {
    const [rows] = await c.query<RowDataPacket[]>(`SELECT writer, seq FROM \`${db}\`.\`${TABLE}\``);
    return new Set(rows.map((r) => `${r.writer}:${r.seq}`));
  } finally {
    await c.end().catch(() => undefined);
  }
}

function killedAnywhere(subject: Target) {
  describe(`killed at any moment of a loaded run: ${subject.name}`, () => {
    let env: SandboxEnv;
    let cleanMs = 0;
    beforeAll(async () => {
      env = subject.env();
      // How long a clean run takes here: the moments are spread over it (and a little past its end).
      await resetSandbox(env);
      const t0 = performance.now();
      const r = await cli(env, runArgs(tempDir('clean'), hooksDir(), subject, env));
      expect(r.code, show(r)).toBe(0);
      cleanMs = performance.now() - t0;
    }, 120_000);
    afterAll(async () => {
      await resetSandbox(env);
      removeTemps();
    });

    for (let k = 0; k < MOMENTS; k++) {
      const then = k % 2 === 0 ? 'rollback' : 'resume';
      // From 10% of a clean run's duration to 110% (the last ones after it would have ended).
      const share = 0.1 + k / (MOMENTS - 1);
      it(`moment ${k + 1}/${MOMENTS} (${Math.round(share * 100)}% of a clean run), then ${then}`, async () => {
        await resetSandbox(env);
        const before = await captureSandboxState(env);
        const dbs = sandboxDatabases(env);
        await createCanaryTable({ ...dbs.old!, name: 'old' }, TABLE);
        const load = new CanaryLoad(dbs.app!, TABLE, 'kill', 1, env.SANDBOX_OLD_DB_HOST);
        load.start();
        const runsDir = tempDir(`kill-${k}`);
        let acked: string[] = [];
        try {
          const run = startDetached(env, runArgs(runsDir, hooksDir(), subject, env));
          await Promise.race([new Promise((r) => setTimeout(r, share * cleanMs)), run.done]);
          killGroup(run.pid);
          await run.done;
          const { runDir } = journalOf(runsDir);
          const r = await cli(env, [then, runDir, '--yes', '--plain', '--hooks-dir', hooksDir()]);
          const end = journalOf(runsDir).lines.at(-1)!;
          if (then === 'rollback') {
            // A run that had not started changing anything has nothing to roll back: also fine.
            expect([0], show(r)).toContain(r.code);
            expect(['rolled-back', 'succeeded'].includes(String(end.status)) || end.type !== 'run-end').toBe(
              true,
            );
          } else {
            expect(r.code, show(r)).toBe(0);
            expect([end.type, end.status]).toEqual(['run-end', 'succeeded']);
          }
        } finally {
          acked = (await load.stop()).acks.map((a) => `${a.writer}:${a.seq}`);
        }
        const [onOld, onNew] = await Promise.all([
          rowsOn(env.SANDBOX_OLD_DB_SOCKET, env.SANDBOX_DB_NAME),
          rowsOn(env.SANDBOX_NEW_DB_SOCKET, env.SANDBOX_DB_NAME),
        ]);
        expect(acked.length).toBeGreaterThan(0);
        if (then === 'rollback') {
          expect(acked.filter((a) => !onOld.has(a))).toEqual([]);
          expect([...onNew].filter((a) => !onOld.has(a))).toEqual([]);
          const after = await captureSandboxState(env);
          expect(after).toEqual(before);
        } else {
          expect(acked.filter((a) => !onNew.has(a))).toEqual([]);
        }
      }, 180_000);
    }
  });
}

for (const subject of [SELF, MANAGED]) killedAnywhere(subject);
