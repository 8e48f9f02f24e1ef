// Must show (issue "Nothing lost, nothing split"), matrices that reach the middle of steps: for every
// step that changes something, under writer load,
//   - the process is SIGKILLed inside the step's verify (its change made, not yet confirmed): the
//     sandbox shows the change the step claims, then `cutover rollback` restores the start state;
//   - the step's apply fails after its first outside write (half a change): the automatic rollback
//     (or, past the point of no return, the halt and then `cutover rollback`) restores it.
// Faults come from the engine's CUTOVER_TEST_FAULT seam (src/engine/fault.ts): the step runs its
// real code against the real servers up to that call. After each: the start state (rules, records,
// what the DNS server answers, replication threads and errors, read_only, locked accounts,
// maintenance, crontabs), replication that really carries a row old → new, and every acknowledged
// write on the old server — counted from our own rows, not the tool's canary count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import {
  captureSandboxState,
  resetSandbox,
  type SandboxEnv,
  type SandboxState,
} from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { getKind } from '../../../src/steps/registry.js';
import { waitFor } from '../sandbox/helpers.js';
import { sandboxDatabases } from '../step-harness.js';
import {
  cli,
  type JournalLine,
  journalOf,
  MANAGED,
  expectWritesOn,
  removeTemps,
  runArgs,
  type RunbookStep,
  SELF,
  sandboxSteps,
  show,
  type Target,
  tempDir,
  undoListsOf,
} from './harness.js';

const TABLE = 'mid_step_probe';
const PNR = 'flip-dns';

/** What a step's change shows in the sandbox state, once its apply returned. */
const SHOWS: Record<string, (before: SandboxState, now: SandboxState) => boolean> = {
  'crons.disable': (b, n) => JSON.stringify(n.crontabs) !== JSON.stringify(b.crontabs),
  'maintenance.enter': (_b, n) => n.maintenance.enabled,
  'aws.security-group.restrict': (b, n) =>
    JSON.stringify(n.securityGroups) !== JSON.stringify(b.securityGroups),
  'mysql.replication.stop': (_b, n) =>
    !n.servers.new.readOnly && n.servers.new.replication.every((r) => r.ioState === 'No' && !r.sqlRunning),
  'aws.route53.flip': (b, n) => JSON.stringify(n.records) !== JSON.stringify(b.records),
  'mysql.replication.reverse': (_b, n) => n.servers.old.replication.some((r) => r.sqlRunning),
};

/** A row written on old as root reaches new: the threads replicate, not only say they run. */
async function replicationCarries(env: SandboxEnv, tag: string): Promise<void> {
  const c = await rootConnection(env.SANDBOX_OLD_DB_SOCKET);
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS \`${env.SANDBOX_DB_NAME}\`.mid_step_flow (tag VARCHAR(80) PRIMARY KEY)`,
    );
    await c.query(`INSERT INTO \`${env.SANDBOX_DB_NAME}\`.mid_step_flow VALUES (?)`, [tag]);
  } finally {
    await c.end().catch(() => undefined);
  }
  await waitFor(
    `a row written on old to replicate to new (${tag})`,
    async () => {
      const n = await rootConnection(env.SANDBOX_NEW_DB_SOCKET);
      try {
        const [rows] = await n.query(`SELECT 1 FROM \`${env.SANDBOX_DB_NAME}\`.mid_step_flow WHERE tag = ?`, [
          tag,
        ]);
        return (rows as unknown[]).length === 1;
      } catch {
        return false; // the table itself may not have replicated yet
      } finally {
        await n.end().catch(() => undefined);
      }
    },
    15_000,
  );
}

function midStep(subject: Target, variants: readonly ('verify-kill' | 'apply-fail')[]) {
  const steps = sandboxSteps(subject).filter((s) => {
    const kind = getKind(s.kind);
    return kind && !kind.readOnly && s.rollback !== 'none';
  });
  const ids = sandboxSteps(subject).map((s) => s.id);

  describe(`faults inside steps: ${subject.name}`, () => {
    let env: SandboxEnv;
    /** Writes each step's apply makes, as `cutover plan` records them. */
    const planned = new Map<string, number>();
    beforeAll(async () => {
      env = subject.env();
      await resetSandbox(env);
      const runsDir = tempDir('mid-plan');
      const r = await cli(env, [
        'plan',
        subject.runbook,
        ...subject.args(env),
        '--plain',
        '--runs-dir',
        runsDir,
      ]);
      expect(r.code, show(r)).toBe(0);
      for (const l of journalOf(runsDir).lines)
        if (l.type === 'plan' && l.stepId)
          planned.set(l.stepId, ((l as { recorded?: unknown[] }).recorded ?? []).length);
    }, 120_000);
    afterAll(async () => {
      await resetSandbox(env);
      removeTemps();
    });

    async function faulted(step: RunbookStep, spec: string, tag: string) {
      await resetSandbox(env);
      const before = await captureSandboxState(env);
      const dbs = sandboxDatabases(env);
      await createCanaryTable({ ...dbs.old!, name: 'old' }, TABLE);
      const load = new CanaryLoad(dbs.app!, TABLE, tag, 1, env.SANDBOX_OLD_DB_HOST);
      load.start();
      const runsDir = tempDir(`mid-${tag}`);
      let acked: string[] = [];
      let r: Awaited<ReturnType<typeof cli>>;
      let atFault: SandboxState;
      let lines: JournalLine[];
      try {
        r = await cli(
          { ...env, CUTOVER_TEST_FAULT: spec } as SandboxEnv,
          runArgs(runsDir, undefined, subject, env),
        );
        atFault = await captureSandboxState(env);
        lines = journalOf(runsDir).lines;
        // The fault fired inside this step: it never completed.
        expect(
          lines.some((l) => l.type === 'step-done' && l.stepId === step.id),
          `${spec} never fired\n${show(r)}`,
        ).toBe(false);
        expect(lines.some((l) => l.type === 'snapshot' && l.stepId === step.id)).toBe(true);
      } catch (e) {
        await load.stop();
        throw e;
      }
      return {
        before,
        r,
        atFault,
        lines,
        runsDir,
        async finish(rollback: boolean) {
          try {
            if (rollback) {
              const rb = await cli(env, ['rollback', journalOf(runsDir).runDir, '--yes', '--plain']);
              expect(rb.code, show(rb)).toBe(0);
            }
          } finally {
            acked = (await load.stop()).acks.map((a) => `${tag}/${a.writer}:${a.seq}`);
          }
          // One rule: every rollback's undo list is the rule's on the journal before it.
          for (const l of undoListsOf(journalOf(runsDir).runDir)) expect(l.recorded).toEqual(l.computed);
          expect(await captureSandboxState(env)).toEqual(before);
          await replicationCarries(env, tag);
          expect(acked.length).toBeGreaterThan(0);
          await expectWritesOn(env, TABLE, 'old', acked);
          console.log(`${tag}: ${acked.length} acknowledged writes, all on old after the rollback`);
        },
      };
    }

    for (const step of steps) {
      if (variants.includes('verify-kill'))
        it(`${step.id}: killed inside its verify, then cutover rollback`, async () => {
          const f = await faulted(step, `${step.id}:verify:1:kill`, `vk-${step.id}`);
          expect(f.r.signal, show(f.r)).toBe('SIGKILL');
          // Apply had returned: the change it claims is there before anything undoes it.
          const shows = SHOWS[step.kind];
          if (shows) expect(shows(f.before, f.atFault), `${step.kind} made its change`).toBe(true);
          await f.finish(true);
        }, 180_000);

      if (variants.includes('apply-fail'))
        it(`${step.id}: apply fails after its first write, then the rollback`, async (ctx) => {
          // A step with nothing to change here (a TTL already low) makes no write to fail at.
          if (planned.get(step.id) === 0) return ctx.skip();
          // After the first write when there are two or more; else before the only one.
          const n = (planned.get(step.id) ?? 1) >= 2 ? 2 : 1;
          const f = await faulted(step, `${step.id}:apply:${n}:fail`, `af-${step.id}`);
          const failed = f.lines.find((l) => l.type === 'step-failed' && l.stepId === step.id);
          expect(failed?.error, show(f.r)).toMatchObject({ code: 'INJECTED_FAULT' });
          const pastPnr = ids.indexOf(step.id) > ids.indexOf(PNR);
          expect(f.r.code, show(f.r)).toBe(pastPnr ? 3 : 1);
          await f.finish(pastPnr);
        }, 180_000);
    }
  });
}

midStep(SELF, ['verify-kill', 'apply-fail']);
midStep(MANAGED, ['apply-fail']);
