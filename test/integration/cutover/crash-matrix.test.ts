// Must show (issue 7, and on the managed platform issue "RDS and Aurora for real"), crash matrix: the
// CLI is SIGKILLed during EVERY step of runbooks/sandbox.yaml (self-managed sandbox) and of the
// production template (managed-platform sandbox)
// (its whole process group, hook included: no cleanup of any kind, as when the operator's laptop
// dies). Variant A: `cutover resume` completes the cutover and the end state is that of a clean run.
// Variant B: `cutover rollback` puts the sandbox back exactly as it was before the run.
// The kill lands inside the step: a cutover-on-before-step hook hangs once the step's step-start
// record is journaled (before its snapshot). A last case kills mid-apply of fence-old, with the
// revoke already sent to the (delayed) AWS endpoint: resume must find it done and not apply it again.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { calls, clearFaults, injectFault, resetCalls } from '../../../src/sandbox/admin-client.js';
import {
  captureSandboxState,
  resetSandbox,
  type SandboxEnv,
  type SandboxState,
} from '../../../src/sandbox/index.js';
import { TEST_LOCK_DIR, waitFor } from '../../helpers/cli.js';
import {
  cli,
  type Detached,
  envNotCovered,
  expectedUndoOrder,
  hangBefore,
  hooksDir,
  idsOf,
  journalHas,
  journalOf,
  killGroup,
  MANAGED,
  pidAlive,
  readJournalLines,
  removeTemps,
  runArgs,
  sandboxSteps,
  SELF,
  show,
  startDetached,
  type Target,
  tempDir,
  waitWhileRunning,
  undoListsOf,
} from './harness.js';

function matrix(subject: Target) {
  const STEPS = sandboxSteps(subject);
  const IDS = STEPS.map((s) => s.id);

  let env: SandboxEnv;
  /** The end state of a clean, successful cutover: what a resumed one must reach. */
  let after: SandboxState;
  /** The state after a reset (every test also captures its own before). */
  let seed: SandboxState;

  beforeAll(async () => {
    env = subject.env();
    await resetSandbox(env);
    seed = await captureSandboxState(env);
    const runsDir = tempDir('clean');
    const r = await cli(env, runArgs(runsDir, hooksDir(), subject, env));
    expect(r.code, show(r)).toBe(0);
    after = await captureSandboxState(env);
    // The cutover changes what it should: otherwise "resume reaches the end state" proves nothing.
    expect(after).not.toEqual(seed);
    expect(after.securityGroups).not.toEqual(seed.securityGroups);
    expect(after.records).not.toEqual(seed.records);
    expect(after.servers).not.toEqual(seed.servers);
    await resetSandbox(env);
  }, 120_000);
  afterEach(async () => {
    await clearFaults(env);
  });
  afterAll(async () => {
    await resetSandbox(env);
    removeTemps();
  });

  interface Crashed {
    runsDir: string;
    runDir: string;
    before: SandboxState;
  }

  /** SIGKILLs the CLI's process group and (a hook is its own process group) the hook's. */
  async function pullThePlug(run: Detached, hookPid?: number): Promise<void> {
    killGroup(run.pid);
    if (hookPid !== undefined) killGroup(hookPid);
    const end = await run.done;
    expect(end.signal).toBe('SIGKILL');
    if (hookPid !== undefined) await waitFor(() => !pidAlive(hookPid), `hook ${hookPid} to die`, 5000);
  }

  /** The lock the killed process left: held by a dead pid, to be taken over. */
  function staleLock(_runsDir: string, deadPid: number): void {
    // One lock per target (servers, record, groups), outside the runs dir: all the dead run's.
    const locks = TEST_LOCK_DIR;
    const files = existsSync(locks) ? readdirSync(locks).filter((f) => f.endsWith('.lock')) : [];
    expect(files.length, 'the killed run left its locks behind').toBeGreaterThan(0);
    for (const f of files)
      expect((JSON.parse(readFileSync(join(locks, f), 'utf8')) as { pid: number }).pid).toBe(deadPid);
    expect(pidAlive(deadPid)).toBe(false);
  }

  /** Reset, capture, run until `target` is in flight (its before-step hook hangs), SIGKILL. */
  async function crashDuring(target: string): Promise<Crashed> {
    await resetSandbox(env);
    const before = await captureSandboxState(env);
    const runsDir = tempDir('runs');
    const marker = join(tempDir('marker'), 'hook.pid');
    const run = startDetached(env, runArgs(runsDir, hangBefore(target, marker), subject, env));
    await waitWhileRunning(run, () => existsSync(marker), `the before-step hook of ${target}`);
    const hookPid = Number(readFileSync(marker, 'utf8').trim());
    expect(hookPid).toBeGreaterThan(0);
    await pullThePlug(run, hookPid);

    const { runDir, lines } = journalOf(runsDir);
    // Killed inside the step: its start is journaled, nothing after it.
    const last = lines.at(-1)!;
    expect([last.type, last.stepId], run.output()).toEqual(['step-start', target]);
    expect(idsOf(lines, 'step-done')).toEqual(IDS.slice(0, IDS.indexOf(target)));
    expect(lines.some((l) => l.type === 'run-end')).toBe(false);
    staleLock(runsDir, run.pid);
    return { runsDir, runDir, before };
  }

  /** Every step done exactly once over the crashed run and its resume; the run ends succeeded. */
  function expectCompletedOnce(runDir: string): void {
    const lines = readJournalLines(runDir);
    expect(idsOf(lines, 'step-done')).toEqual(IDS);
    expect(idsOf(lines, 'run-resume')).toHaveLength(1);
    expect(idsOf(lines, 'undo-start', 'rollback-start')).toEqual([]);
    const end = lines.at(-1)!;
    expect([end.type, end.status]).toEqual(['run-end', 'succeeded']);
  }

  describe(`crash matrix: SIGKILL during every step of ${subject.name}`, () => {
    it('covers every step of the runbook', () => {
      expect(IDS.length).toBeGreaterThanOrEqual(11);
      expect(new Set(IDS).size).toBe(IDS.length);
      // Every variable it reads comes from the test sandbox, none from a developer's .sandbox/env.
      expect(envNotCovered(env, subject)).toEqual([]);
    });

    describe.each(IDS)('killed during %s', (target) => {
      it('A: cutover resume completes the cutover (end state of a clean run)', async () => {
        const c = await crashDuring(target);
        const r = await cli(env, ['resume', c.runDir, '--yes', '--plain', '--hooks-dir', hooksDir()]);
        expect(r.code, show(r)).toBe(0);
        expectCompletedOnce(c.runDir);
        expect(await captureSandboxState(env)).toEqual(after);
      }, 120_000);

      it('B: cutover rollback restores the start', async () => {
        const c = await crashDuring(target);
        const crashed = journalOf(c.runsDir).lines;
        const r = await cli(env, ['rollback', c.runDir, '--yes', '--plain']);
        expect(r.code, show(r)).toBe(0);
        const { lines } = journalOf(c.runsDir);
        // The steps done before the kill, undone newest first; the in-flight one had not snapshotted.
        const order = expectedUndoOrder(crashed, STEPS);
        expect(idsOf(lines, 'undo-start', 'undo-skipped'), show(r)).toEqual(order);
        expect(idsOf(lines, 'undo-failed')).toEqual([]);
        expect(idsOf(lines, 'undo-done')).toEqual(idsOf(lines, 'undo-start'));
        expect(lines.at(-1)!.status).toBe('rolled-back');
        // One rule: the list `cutover rollback` used is the rule's on the journal it was given.
        const [list] = undoListsOf(c.runDir);
        expect(list!.recorded).toEqual(list!.computed);
        expect(await captureSandboxState(env)).toEqual(c.before);
      }, 120_000);
    });

    describe('killed mid-apply of fence-old, the revoke already sent to AWS', () => {
      const STEP = 'fence-old';
      const REVOKE = 'ec2:RevokeSecurityGroupIngress';

      /** Kills once the revoke reached the endpoint (held there 2 s, then applied anyway, as AWS would). */
      async function crashMidApply(): Promise<Crashed> {
        expect(IDS).toContain(STEP);
        await resetSandbox(env);
        const before = await captureSandboxState(env);
        await injectFault(env, { action: REVOKE, mode: 'delay', delayMs: 2000, count: 1 });
        const runsDir = tempDir('runs');
        const run = startDetached(env, runArgs(runsDir, hooksDir(), subject, env));
        let revokes = 0;
        const poll = setInterval(() => {
          calls(env).then(
            (c) => {
              revokes = c.calls[REVOKE] ?? 0;
            },
            () => undefined,
          );
        }, 20);
        try {
          await waitWhileRunning(
            run,
            () => journalHas(runsDir, (l) => l.type === 'snapshot' && l.stepId === STEP) && revokes > 0,
            `the ${STEP} snapshot and its revoke call`,
          );
        } finally {
          clearInterval(poll);
        }
        await pullThePlug(run);
        const { runDir, lines } = journalOf(runsDir);
        // Snapshot journaled, apply under way (its warning that open connections survive), not finished.
        const ofStep = lines.filter((l) => l.stepId === STEP).map((l) => l.type);
        expect(ofStep.slice(0, 2)).toEqual(['step-start', 'snapshot']);
        expect(ofStep.filter((t) => !['step-start', 'snapshot', 'warning'].includes(t))).toEqual([]);
        expect(lines.at(-1)!.stepId).toBe(STEP);
        staleLock(runsDir, run.pid);
        // The endpoint finishes the held revoke although the caller is gone.
        const sg = env.SANDBOX_SECURITY_GROUP_ID;
        const deadline = Date.now() + 10_000;
        for (;;) {
          const now = await captureSandboxState(env);
          if (JSON.stringify(now.securityGroups[sg]) === JSON.stringify(after.securityGroups[sg])) break;
          if (Date.now() > deadline) throw new Error('the held revoke never landed');
          await new Promise((r) => setTimeout(r, 100));
        }
        return { runsDir, runDir, before };
      }

      it('A: resume finds the change made and does not apply it again; the group has exactly the fenced rules', async () => {
        const c = await crashMidApply();
        await resetCalls(env);
        const r = await cli(env, ['resume', c.runDir, '--yes', '--plain', '--hooks-dir', hooksDir()]);
        expect(r.code, show(r)).toBe(0);
        const { lines } = journalOf(c.runsDir);
        const reconciled = lines.filter((l) => l.type === 'step-reconciled');
        const made = (await calls(env)).calls;
        if (subject === SELF) {
          // One group: the held revoke was the whole change.
          expect(reconciled.map((l) => [l.stepId, l.applied])).toEqual([[STEP, true]]);
          expect(r.stdout).toContain('interrupted step had completed; verified, not re-applied');
          expect(made[REVOKE] ?? 0).toBe(0);
          expect(made['ec2:AuthorizeSecurityGroupIngress'] ?? 0).toBe(0);
        } else {
          // Every group of the instance: the kill came after the first group's revoke, so resume
          // finds the step half done and finishes it — without revoking that group again.
          expect(reconciled.filter((l) => l.applied === true)).toEqual([]);
          expect(made[REVOKE] ?? 0).toBeLessThanOrEqual(1);
        }
        expectCompletedOnce(c.runDir);
        const end = await captureSandboxState(env);
        expect(end.securityGroups[env.SANDBOX_SECURITY_GROUP_ID]).toEqual(
          after.securityGroups[env.SANDBOX_SECURITY_GROUP_ID],
        );
        expect(end).toEqual(after);
      }, 120_000);

      it('B: rollback undoes the half-journaled step from its snapshot and restores the start', async () => {
        const c = await crashMidApply();
        const r = await cli(env, ['rollback', c.runDir, '--yes', '--plain']);
        expect(r.code, show(r)).toBe(0);
        const { lines } = journalOf(c.runsDir);
        expect(idsOf(lines, 'undo-start', 'undo-skipped')[0]).toBe(STEP);
        expect(idsOf(lines, 'undo-failed')).toEqual([]);
        const [list] = undoListsOf(c.runDir);
        expect(list!.recorded).toEqual(list!.computed);
        expect(await captureSandboxState(env)).toEqual(c.before);
      }, 120_000);
    });
  });
}

for (const subject of [SELF, MANAGED]) matrix(subject);
