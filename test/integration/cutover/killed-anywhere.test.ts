// Must show (issue "Nothing lost, nothing split"), killed at any moment: the CLI is SIGKILLed at
// moments spread over a loaded cutover — not only at step boundaries: inside the drain's quiet
// interval, the flip's INSYNC and TTL waits, reverse replication, smoke, and after the run ended —
// and each kill is followed by `cutover rollback` (odd moments) or `cutover resume` (even ones).
// After a rollback: the start state, and every acknowledged write on the old server, none only on
// the new. After a resume: the cutover finished, and every acknowledged write on the new server.
// One window has no safe way back: after the flip, before reverse replication runs, the new server
// holds writes nothing carries back. There `cutover rollback` refuses before undoing anything (exit
// 3, DNS left on the server with the writes), and the operator finishes with `cutover resume`.
// Writes are counted by our own rows (root, on both servers), not by the tool.
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { sandboxDatabases } from '../step-harness.js';
import {
  cli,
  hooksDir,
  journalOf,
  killGroup,
  MANAGED,
  probeRows,
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
        let outcome = '';
        try {
          const run = startDetached(env, runArgs(runsDir, hooksDir(), subject, env));
          await Promise.race([new Promise((r) => setTimeout(r, share * cleanMs)), run.done]);
          killGroup(run.pid);
          await run.done;
          // Killed before the run wrote anything: nothing to undo or resume.
          // Started means its journal holds a run-start: a kill can land before the directory or
          // the journal's first line exists.
          const started =
            existsSync(runsDir) &&
            readdirSync(runsDir).some((d) => !d.startsWith('.')) &&
            (() => {
              try {
                return journalOf(runsDir).lines[0]?.type === 'run-start';
              } catch {
                return false;
              }
            })();
          if (!started) outcome = 'not started';
          const { runDir } = started ? journalOf(runsDir) : { runDir: '' };
          // Killed after the run had ended: resume has nothing to do (exit 2, says so).
          const finished = started && journalOf(runsDir).lines.at(-1)?.status === 'succeeded';
          const r = started
            ? await cli(env, [then, runDir, '--yes', '--plain', '--hooks-dir', hooksDir()])
            : undefined;
          const end = started ? journalOf(runsDir).lines.at(-1)! : undefined;
          if (!r || !end) {
            // nothing ran
          } else if (
            then === 'rollback' &&
            r.code === 3 &&
            /Rollback refused before undoing anything/.test(r.stdout)
          ) {
            // Stranded writes: nothing was undone; going forward is the way out.
            expect(journalOf(runsDir).lines.some((l) => l.type === 'undo-start')).toBe(false);
            const fwd = await cli(env, ['resume', runDir, '--yes', '--plain', '--hooks-dir', hooksDir()]);
            expect(fwd.code, show(fwd)).toBe(0);
            outcome = 'refused, then resumed';
          } else if (then === 'rollback') {
            expect(r.code, show(r)).toBe(0);
            expect(['rolled-back', 'succeeded']).toContain(String(end.status));
            outcome = 'rolled back';
          } else if (finished) {
            expect(r.code, show(r)).toBe(2);
            expect(r.stderr).toMatch(/already ended \(succeeded\); nothing to resume/);
            outcome = 'had finished';
          } else {
            expect(r.code, show(r)).toBe(0);
            expect([end.type, end.status]).toEqual(['run-end', 'succeeded']);
            outcome = 'resumed';
          }
        } finally {
          acked = (await load.stop()).acks.map((a) => `kill/${a.writer}:${a.seq}`);
        }
        const [onOld, onNew] = await Promise.all([
          probeRows(env.SANDBOX_OLD_DB_SOCKET, env.SANDBOX_DB_NAME, TABLE),
          probeRows(env.SANDBOX_NEW_DB_SOCKET, env.SANDBOX_DB_NAME, TABLE),
        ]);
        expect(acked.length).toBeGreaterThan(0);
        console.log(`killed at ${Math.round(share * 100)}%: ${outcome}, ${acked.length} acknowledged writes`);
        if (outcome === 'not started') {
          expect(await captureSandboxState(env)).toEqual(before);
          expect(acked.filter((a) => !onOld.has(a))).toEqual([]);
        } else if (outcome === 'rolled back') {
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
