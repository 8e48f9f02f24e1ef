// Must show (issue "Nothing lost, nothing split"), split-brain test: under load from writers that
// follow DNS *and* a pool pinned to the new server (opened after the flip through the name, as app
// instances do, then kept whatever DNS says later; it resolves the name again only to reconnect),
// a step after the point of no return fails (an after-step
// hook fails `smoke`). The engine stops instead of rolling a working data move back on its own; the
// operator then runs `cutover rollback`. Afterwards every acknowledged write is on the old server and
// none exists only on the new one — GTID on and off, self-managed and managed profiles. The count is
// ours (root, both servers, row by row), not the tool's.
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { waitFor } from '../../helpers/cli.js';
import { sandboxDatabases } from '../step-harness.js';
import {
  cli,
  failAfter,
  journalHas,
  journalOf,
  MANAGED,
  expectWritesOn,
  removeTemps,
  runArgs,
  SELF,
  show,
  startDetached,
  type Target,
  tempDir,
} from './harness.js';

const TABLE = 'split_probe';
afterAll(async () => {
  await Promise.all([resetSandbox(SELF.env()), resetSandbox(MANAGED.env())]);
  removeTemps();
});

const cases: { target: Target; gtid: 'on' | 'off' }[] = [
  { target: SELF, gtid: 'on' },
  { target: SELF, gtid: 'off' },
  { target: MANAGED, gtid: 'on' },
  { target: MANAGED, gtid: 'off' },
];

describe('split-brain: a failure after the flip, writers on DNS and a pool pinned to new', () => {
  it.each(cases)(
    '$target.name, GTID $gtid: after cutover rollback every acknowledged write is on old, none only on new',
    async ({ target, gtid }) => {
      const env: SandboxEnv = target.env();
      await resetSandbox(env, { gtid });
      const dbs = sandboxDatabases(env);
      await createCanaryTable({ ...dbs.old!, name: 'old' }, TABLE);

      // One writer each: unthrottled, more would mostly measure how far the replica falls behind.
      const dnsLoad = new CanaryLoad(dbs.app!, TABLE, 'dns', 1, env.SANDBOX_OLD_DB_HOST);
      const pinned = new CanaryLoad(dbs.app!, TABLE, 'pinned', 1, env.SANDBOX_OLD_DB_HOST, false);
      dnsLoad.start();
      const runsDir = tempDir(`split-${gtid}`);
      const run = startDetached(env, runArgs(runsDir, failAfter('smoke'), target, env));
      let pinnedStarted = false;
      try {
        // The pinned pool opens once the name points at new, and keeps writing there.
        await waitFor(
          () => run.exited() || journalHas(runsDir, (l) => l.type === 'step-done' && l.stepId === 'flip-dns'),
          'the flip',
          90_000,
        );
        if (!run.exited()) {
          pinned.start();
          pinnedStarted = true;
        }
        const end = await run.done;
        const { runDir, lines } = journalOf(runsDir);
        expect(
          lines.some((l) => l.type === 'step-done' && l.stepId === 'flip-dns'),
          run.output(),
        ).toBe(true);
        // A failed smoke test after the data moved: stop and say so, not an automatic rollback.
        expect(end.code, run.output()).toBe(3);
        expect(
          lines.some((l) => l.type === 'undo-start'),
          run.output(),
        ).toBe(false);

        const r = await cli(env, ['rollback', runDir, '--yes', '--plain']);
        expect(r.code, show(r)).toBe(0);
      } finally {
        const [dnsRes, pinnedRes] = await Promise.all([
          dnsLoad.stop(),
          pinnedStarted ? pinned.stop() : undefined,
        ]);
        const acked = [
          ...dnsRes.acks.map((a) => `dns/${a.writer}:${a.seq}`),
          ...(pinnedRes?.acks ?? []).map((a) => `pinned/${a.writer}:${a.seq}`),
        ];
        console.log(
          `split-brain ${target.runbook.split('/').at(-1)} GTID ${gtid}: ${acked.length} acknowledged (${pinnedRes?.acks.length ?? 0} through the pinned pool)`,
        );
        expect(pinnedRes?.acks.length ?? 0).toBeGreaterThan(0);
        await expectWritesOn(env, TABLE, 'old', acked);
      }
    },
    180_000,
  );
});
