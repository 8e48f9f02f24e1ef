// Must show (issue 7, and on the managed platform issue "RDS and Aurora for real"), fault injection
// matrix: for EVERY step of runbooks/sandbox.yaml on the self-managed sandbox, and of the production
// template on the managed-platform sandbox, the step is
// made to fail and, after the automatic rollback, the sandbox is exactly as it was before the run
// (security group rules, DNS record, replication old → new, read_only flags, maintenance, crontabs).
// The failure is a cutover-on-after-step hook exiting 1 once the step is done and journaled (the
// engine then undoes every completed step, that one included); for the AWS steps a second variant
// fails the step's own API call at the sandbox endpoint (access denied, HTTP 500).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  clearFaults,
  type Fault,
  type FaultSpec,
  injectFault,
  listFaults,
} from '../../../src/sandbox/admin-client.js';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import {
  cli,
  envNotCovered,
  expectedUndoOrder,
  failAfter,
  idsOf,
  type JournalLine,
  journalOf,
  MANAGED,
  removeTemps,
  runArgs,
  sandboxSteps,
  SELF,
  show,
  type Target,
  tempDir,
  undoListsOf,
} from './harness.js';

function matrix(subject: Target) {
  const STEPS = sandboxSteps(subject);
  const IDS = STEPS.map((s) => s.id);
  const PNR = 'flip-dns';

  let env: SandboxEnv;

  beforeAll(() => {
    env = subject.env();
  });
  afterEach(async () => {
    await clearFaults(env);
  });
  afterAll(async () => {
    await resetSandbox(env);
    removeTemps();
  });

  /**
   * Reset, capture, arm the fault, run the cutover expecting a rollback caused by `target`; checks
   * the journal (undo in the reverse order of the steps done) and that the end state is the start.
   */
  async function failAndCheck(
    target: string,
    o: { hooks?: string; arm?: () => Promise<void>; failure: RegExp },
  ): Promise<{ lines: JournalLine[]; faults: Fault[] }> {
    await resetSandbox(env);
    const before = await captureSandboxState(env);
    await o.arm?.();
    const runsDir = tempDir('runs');
    const r = await cli(env, runArgs(runsDir, o.hooks, subject, env));
    const faults = await listFaults(env);
    await clearFaults(env);
    // Past the point of no return the data has moved: the run stops (exit 3) and undoes nothing on
    // its own; the operator's `cutover rollback` then does it on purpose.
    const pastPnr = IDS.indexOf(target) > IDS.indexOf(PNR);
    expect(r.code, show(r)).toBe(pastPnr ? 3 : 1);
    if (pastPnr) {
      const halted = journalOf(runsDir).lines;
      expect(halted.at(-1)).toMatchObject({ type: 'run-end', status: 'halted', exitCode: 3 });
      expect(idsOf(halted, 'undo-start')).toEqual([]);
      const rb = await cli(env, ['rollback', journalOf(runsDir).runDir, '--yes', '--plain']);
      expect(rb.code, show(rb)).toBe(0);
    }

    const { lines } = journalOf(runsDir);
    // The run names the failing step and why, in its rollback and its end record.
    const end = lines.at(-1)!;
    expect(end.type).toBe('run-end');
    expect(end.status).toBe('rolled-back');
    const failure = lines.find((l) => l.type === 'run-end')!;
    expect(String(failure.message)).toContain(`step "${target}" failed`);
    expect(String(failure.message)).toMatch(o.failure);
    if (o.hooks) {
      // The hook fires once the step is done and journaled: the step stays done (its change is made).
      expect(idsOf(lines, 'step-done').at(-1)).toBe(target);
      expect(idsOf(lines, 'step-failed')).toEqual([]);
    } else {
      expect(idsOf(lines, 'step-failed')).toEqual([target]);
      expect(idsOf(lines, 'step-done')).not.toContain(target);
    }
    // Everything before the target ran, nothing after it started.
    expect(idsOf(lines, 'step-start')).toEqual(IDS.slice(0, IDS.indexOf(target) + 1));

    // Undo in the reverse order of the steps done, each one finished.
    const order = expectedUndoOrder(lines, STEPS);
    expect(order.length).toBeGreaterThan(0);
    expect(idsOf(lines, 'undo-start', 'undo-skipped'), show(r)).toEqual(order);
    const rb = lines.filter((l) => l.type === 'rollback-start');
    expect(rb).toHaveLength(1);
    expect(rb[0]!.steps).toEqual(order);
    expect(idsOf(lines, 'undo-failed')).toEqual([]);
    expect(idsOf(lines, 'undo-done')).toEqual(idsOf(lines, 'undo-start'));

    // One rule: the undo list used, in-process or by `cutover rollback`, is the rule's on the journal.
    const lists = undoListsOf(journalOf(runsDir).runDir);
    expect(lists).toHaveLength(1);
    expect(lists[0]!.recorded).toEqual(lists[0]!.computed);

    expect(await captureSandboxState(env)).toEqual(before);
    return { lines, faults };
  }

  describe(`fault injection matrix: every step of ${subject.name} fails, the rollback restores the start`, () => {
    it('covers every step of the runbook', () => {
      expect(IDS.length).toBeGreaterThanOrEqual(11);
      expect(new Set(IDS).size).toBe(IDS.length);
      // Every variable it reads comes from the test sandbox, none from a developer's .sandbox/env.
      expect(envNotCovered(env, subject)).toEqual([]);
    });

    it.each(IDS)(
      'after-step hook fails at %s: exit 1 (past the point of no return: exit 3, then cutover rollback), undone in reverse, state as before',
      async (target) => {
        await failAndCheck(target, {
          hooks: failAfter(target),
          failure: /cutover-on-after-step exited 1: injected failure after/,
        });
      },
      120_000,
    );

    const awsFaults: { step: string; fault: FaultSpec; failure: RegExp }[] = [
      {
        step: 'fence-old',
        fault: { action: 'ec2:RevokeSecurityGroupIngress', mode: 'deny' },
        failure: /UnauthorizedOperation|AccessDenied|not authorized/i,
      },
      {
        step: 'flip-dns',
        fault: { action: 'route53:ChangeResourceRecordSets', mode: 'fail' },
        failure: /InternalFailure|InternalError|500|ServiceUnavailable|internal/i,
      },
    ];

    it.each(awsFaults)(
      'sandbox endpoint fault ($fault.mode of $fault.action) fails $step: exit 1, undone in reverse, state as before',
      async ({ step, fault, failure }) => {
        expect(IDS).toContain(step);
        expect(STEPS.find((s) => s.id === step)!.kind).toMatch(/^aws\./);
        let armed: Fault | undefined;
        const { lines, faults } = await failAndCheck(step, {
          arm: async () => {
            armed = await injectFault(env, fault);
          },
          failure,
        });
        // The step really made the call and was refused.
        expect(faults.find((f) => f.id === armed?.id)?.matched ?? 0).toBeGreaterThan(0);
        // The failed step had journaled its snapshot: it is undone first (it may have half-applied).
        expect(expectedUndoOrder(lines, STEPS)[0]).toBe(step);
      },
      120_000,
    );
  });
}

for (const subject of [SELF, MANAGED]) matrix(subject);
