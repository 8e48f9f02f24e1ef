// Must show (issue "Nothing lost, nothing split"), killed at any moment: the CLI is SIGKILLed at
// moments spread over a loaded cutover — not only at step boundaries: inside the drain's quiet
// interval, the flip's INSYNC and TTL waits, reverse replication, smoke, and after the run ended —
// and each kill is followed once by `cutover rollback` and once, from the same moment of a fresh
// run, by `cutover resume`. After a rollback: the start state, and every acknowledged write on the
// old server, none only on the new. After a resume: the cutover finished, and every acknowledged
// write on the new server. A kill after the flip and before reverse replication leaves the new
// server with writes nothing carries back yet: the rollback runs reverse replication forward first
// (the bridge), then undoes as usual. Writes are counted by our own rows (root, on both servers),
// not by the tool.
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { waitFor } from '../sandbox/helpers.js';
import { sandboxDatabases } from '../step-harness.js';
import {
  cli,
  hooksDir,
  journalOf,
  killGroup,
  MANAGED,
  expectWritesOn,
  rowsOnBoth,
  removeTemps,
  runArgs,
  SELF,
  sandboxSteps,
  show,
  startDetached,
  type Target,
  tempDir,
} from './harness.js';

const TABLE = 'kill_probe';

function killedAnywhere(subject: Target, moments: number) {
  describe(`killed at any moment of a loaded run: ${subject.name}`, () => {
    let env: SandboxEnv;
    // A clean run's timeline: from spawning the CLI to its journal's first record, then to its last.
    let startupMs = 0;
    let runMs = 0;
    beforeAll(async () => {
      env = subject.env();
      await resetSandbox(env);
      const runsDir = tempDir('clean');
      const t0 = Date.now();
      const r = await cli(env, runArgs(runsDir, hooksDir(), subject, env));
      expect(r.code, show(r)).toBe(0);
      const lines = journalOf(runsDir).lines;
      const first = Date.parse(String(lines[0]!.ts));
      startupMs = Math.max(0, first - t0);
      runMs = Date.parse(String(lines.at(-1)!.ts)) - first;
    }, 120_000);
    afterAll(async () => {
      await resetSandbox(env);
      removeTemps();
    });

    // Deterministic: killed as reverse replication is about to make its first change, after the
    // flip. Writers following DNS then write on new only; the rollback must carry those writes back
    // (running reverse replication itself) before it points DNS at old and reopens it.
    it('killed between the flip and reverse replication, then cutover rollback carries the writes back', async () => {
      const reverse = sandboxSteps(subject).find((s) => s.kind === 'mysql.replication.reverse')!;
      await resetSandbox(env);
      const before = await captureSandboxState(env);
      const dbs = sandboxDatabases(env);
      await createCanaryTable({ ...dbs.old!, name: 'old' }, TABLE);
      const load = new CanaryLoad(dbs.app!, TABLE, 'bridge', 1, env.SANDBOX_OLD_DB_HOST);
      load.start();
      const runsDir = tempDir('bridge');
      let acked: string[] = [];
      try {
        const r = await cli(
          { ...env, CUTOVER_TEST_FAULT: `${reverse.id}:apply:1:kill` } as SandboxEnv,
          runArgs(runsDir, hooksDir(), subject, env),
        );
        expect(r.signal, show(r)).toBe('SIGKILL');
        // Killed by the fault, where it was placed: past the flip, reverse replication begun.
        const killedAt = journalOf(runsDir).lines;
        expect(
          killedAt.some((l) => l.type === 'point-of-no-return'),
          show(r),
        ).toBe(true);
        expect(killedAt.at(-1), show(r)).toMatchObject({ type: 'snapshot', stepId: reverse.id });
        // Writers re-resolve within the record's TTL: let them write on new, where nothing carries
        // their rows back yet.
        const stranded = async () => {
          const { onOld, onNew } = await rowsOnBoth(env, TABLE);
          return [...onNew].filter((x) => !onOld.has(x)).length;
        };
        await waitFor('20 rows only on new', async () => (await stranded()) >= 20, 10_000);
        expect(await stranded()).toBeGreaterThanOrEqual(20);
        const rb = await cli(env, ['rollback', journalOf(runsDir).runDir, '--yes', '--plain']);
        expect(rb.code, show(rb)).toBe(0);
        expect(rb.stdout).toMatch(/replicating the new primary's writes back first/);
        const lines = journalOf(runsDir).lines;
        expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back' });
        expect(lines.some((l) => l.type === 'undo-done' && l.stepId === reverse.id)).toBe(true);
      } finally {
        acked = (await load.stop()).acks.map((a) => `bridge/${a.writer}:${a.seq}`);
      }
      const { onOld, onNew } = await expectWritesOn(env, TABLE, 'old', acked);
      console.log(
        `bridge: ${acked.length} acknowledged writes, ${onNew.size} rows on new, ${onOld.size} on old`,
      );
      expect(await captureSandboxState(env)).toEqual(before);
    }, 180_000);

    for (let k = 0; k < moments * 2; k++) {
      const then = k % 2 === 0 ? 'rollback' : 'resume';
      const m = Math.floor(k / 2);
      // Spread over the run itself, from its journal's first record to a little past its last
      // (the CLI's start-up before it is not where the interesting moments are).
      const share = (1.1 * m) / (moments - 1);
      it(`moment ${m + 1}/${moments} (${Math.round(share * 100)}% into a clean run), then ${then}`, async () => {
        await resetSandbox(env);
        const before = await captureSandboxState(env);
        const dbs = sandboxDatabases(env);
        await createCanaryTable({ ...dbs.old!, name: 'old' }, TABLE);
        const load = new CanaryLoad(dbs.app!, TABLE, 'kill', 1, env.SANDBOX_OLD_DB_HOST);
        load.start();
        const runsDir = tempDir(`kill-${k}`);
        let acked: string[] = [];
        let outcome = '';
        let where = '';
        try {
          const run = startDetached(env, runArgs(runsDir, hooksDir(), subject, env));
          await Promise.race([new Promise((r) => setTimeout(r, startupMs + share * runMs)), run.done]);
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
          // Where the kill landed: the step in progress (or last done) and its last record.
          const last = started ? journalOf(runsDir).lines.at(-1) : undefined;
          where = last ? ` in ${last.stepId ?? '-'} after its ${last.type}` : '';
          // Killed after the run had ended: resume has nothing to do (exit 2, says so).
          const finished = started && journalOf(runsDir).lines.at(-1)?.status === 'succeeded';
          const r = started
            ? await cli(env, [then, runDir, '--yes', '--plain', '--hooks-dir', hooksDir()])
            : undefined;
          const end = started ? journalOf(runsDir).lines.at(-1)! : undefined;
          if (!r || !end) {
            // nothing ran
          } else if (then === 'rollback') {
            expect(r.code, show(r)).toBe(0);
            expect(['rolled-back', 'succeeded']).toContain(String(end.status));
            const bridged = /replicating the new primary's writes back first/.test(r.stdout);
            outcome = bridged ? 'rolled back (reverse replication run first)' : 'rolled back';
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
        expect(acked.length).toBeGreaterThan(0);
        console.log(
          `killed at ${Math.round(share * 100)}%${where}: ${outcome}, ${acked.length} acknowledged writes`,
        );
        if (outcome === 'not started' || outcome.startsWith('rolled back')) {
          await expectWritesOn(env, TABLE, 'old', acked);
          expect(await captureSandboxState(env)).toEqual(before);
        } else {
          await expectWritesOn(env, TABLE, 'new', acked);
        }
      }, 180_000);
    }
  });
}

// 20 moments × (rollback, resume) on the self-managed pair; 6 × 2 on the managed platform.
killedAnywhere(SELF, 20);
killedAnywhere(MANAGED, 6);
