// Must show (issue 13): `cutover iam-policy` for every shipped runbook against the AWS actions its
// plan, runs and rollbacks really call on the sandbox endpoint (which counts calls per action).
// Paths: a plan; a full run; a run failing after the fence, just before the point of no return, that
// rolls back on its own; a run halted past the point of no return, then `cutover rollback`. Every
// called action is allowed, and every allowed action is called on one of those paths.
import {
  DescribeSecurityGroupRulesCommand,
  ModifySecurityGroupRulesCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calls, resetCalls } from '../../../src/sandbox/admin-client.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import type { PolicyDocument } from '../../../src/steps/aws/iam-policy.js';
import type { RestrictSnapshot } from '../../../src/steps/aws/security-group-restrict.js';
import { awsClients } from '../sandbox/helpers.js';
import {
  cli,
  failAfter,
  journalOf,
  MANAGED,
  removeTemps,
  runArgs,
  sandboxSteps,
  SELF,
  show,
  type Target,
  tempDir,
} from './harness.js';

const PNR = 'flip-dns';

function policyCheck(subject: Target) {
  const IDS = sandboxSteps(subject).map((s) => s.id);
  let env: SandboxEnv;
  /** Actions called, by path. */
  const called: Record<string, Set<string>> = {};

  beforeAll(() => {
    env = subject.env();
  });
  afterAll(async () => {
    await resetSandbox(env);
    removeTemps();
  });

  async function counted(path: string, fn: () => Promise<void>): Promise<void> {
    await resetCalls(env);
    await fn();
    const got = Object.keys((await calls(env)).calls);
    called[path] = new Set([...(called[path] ?? []), ...got]);
  }

  async function policy(mode: 'plan' | 'run'): Promise<{ actions: Set<string>; stderr: string }> {
    const r = await cli(env, ['iam-policy', subject.runbook, ...subject.args(env), '--mode', mode]);
    expect(r.code, show(r)).toBe(0);
    const doc = JSON.parse(r.stdout) as PolicyDocument;
    return { actions: new Set(doc.Statement.flatMap((s) => s.Action)), stderr: r.stderr };
  }

  const sorted = (s: Iterable<string>) => [...s].sort();
  const union = (...paths: string[]) => new Set(paths.flatMap((p) => [...(called[p] ?? [])]));

  describe(`cutover iam-policy of ${subject.name} against the calls on the sandbox endpoint`, () => {
    it('plan: reads only', async () => {
      await resetSandbox(env);
      await counted('plan', async () => {
        const r = await cli(env, [
          'plan',
          subject.runbook,
          ...subject.args(env),
          '--plain',
          '--runs-dir',
          tempDir('plan'),
        ]);
        expect(r.code, show(r)).toBe(0);
      });
      expect(called.plan!.size).toBeGreaterThan(0);
    });

    it('a full run', async () => {
      await resetSandbox(env);
      await counted('run', async () => {
        const r = await cli(env, runArgs(tempDir('run'), undefined, subject, env));
        expect(r.code, show(r)).toBe(0);
      });
    }, 120_000);

    it('a run failing after the fence, before the point of no return, rolls back on its own', async () => {
      const target = IDS[IDS.indexOf(PNR) - 1]!;
      expect(IDS.indexOf(target)).toBeGreaterThan(IDS.indexOf('fence-old'));
      await resetSandbox(env);
      await counted('rollback', async () => {
        const r = await cli(env, runArgs(tempDir('fail'), failAfter(target), subject, env));
        expect(r.code, show(r)).toBe(1);
      });
    }, 120_000);

    it('a run halted past the point of no return says what to put back; cutover rollback prints and exits 0', async () => {
      const target = IDS[IDS.indexOf(PNR) + 1]!;
      await resetSandbox(env);
      const runsDir = tempDir('halt');
      await counted('halt', async () => {
        const r = await cli(env, runArgs(runsDir, failAfter(target), subject, env));
        expect(r.code, show(r)).toBe(3);
        // What to do by hand (issue 13), not the change the fence made.
        const fence = r.stdout.split('\n').filter((l) => l.includes('needs a human: [fence-old]'));
        expect(fence, show(r)).toHaveLength(1);
        expect(fence[0]).toMatch(
          /put back tcp\/3306 from \S+( \([^)]*\))? on sg-\S+ \(was revoked by the fence\)/,
        );
        expect(fence[0]).not.toMatch(/would revoke/);
        const flip = r.stdout.split('\n').find((l) => l.includes('needs a human: [flip-dns]'));
        expect(flip, show(r)).toMatch(/point \S+ CNAME in zone \S+ back at \S+ TTL \d+ \(was flipped to /);
      });
      // While halted, someone re-describes a rule the fence kept (an allowlisted one): the
      // rollback puts its description back, the path on which the tool calls ModifySecurityGroupRules.
      const { ec2 } = awsClients(env);
      const snap = journalOf(runsDir).lines.find((l) => l.type === 'snapshot' && l.stepId === 'fence-old')!
        .snapshot as RestrictSnapshot;
      let kept: { groupId: string; rule: SecurityGroupRule } | undefined;
      for (const g of snap.groups ?? []) {
        const now = await ec2.send(
          new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [g.groupId] }] }),
        );
        const rule = now.SecurityGroupRules?.find(
          (r) => !r.IsEgress && r.FromPort === 3306 && g.rules.some((b) => b.id === r.SecurityGroupRuleId),
        );
        if (rule) kept = { groupId: g.groupId, rule };
      }
      expect(kept, 'a 3306 rule the fence kept').toBeDefined();
      const { groupId, rule } = kept!;
      await ec2.send(
        new ModifySecurityGroupRulesCommand({
          GroupId: groupId,
          SecurityGroupRules: [
            {
              SecurityGroupRuleId: rule.SecurityGroupRuleId,
              SecurityGroupRule: {
                IpProtocol: rule.IpProtocol,
                FromPort: rule.FromPort,
                ToPort: rule.ToPort,
                CidrIpv4: rule.CidrIpv4,
                ...(rule.ReferencedGroupInfo?.GroupId
                  ? { ReferencedGroupId: rule.ReferencedGroupInfo.GroupId }
                  : {}),
                Description: 'edited during the window',
              },
            },
          ],
        }),
      );
      await counted('rollback', async () => {
        const rb = await cli(env, ['rollback', journalOf(runsDir).runDir, '--yes', '--plain']);
        expect(rb.code, show(rb)).toBe(0);
        expect(rb.stdout).toMatch(/rolled-back \(exit 0\)/);
      });
      const after = await ec2.send(
        new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
      );
      expect(
        after.SecurityGroupRules?.find((r) => r.SecurityGroupRuleId === rule.SecurityGroupRuleId)
          ?.Description,
      ).toBe(rule.Description);
    }, 180_000);

    it('plan policy: every action the plan called is allowed, and the plan calls every allowed one', async () => {
      const { actions } = await policy('plan');
      expect(sorted(actions)).toEqual(sorted(called.plan!));
    });

    it('run policy: every action any path called is allowed, and every allowed one is called on some path', async () => {
      const { actions, stderr } = await policy('run');
      const all = union('plan', 'run', 'rollback', 'halt');
      const notAllowed = sorted([...all].filter((a) => !actions.has(a)));
      const neverCalled = sorted([...actions].filter((a) => !all.has(a)));
      expect({ notAllowed, neverCalled }).toEqual({ notAllowed: [], neverCalled: [] });
      // A resource named only at run time is said, not hidden (the template fences by instance).
      for (const line of stderr.trim().split('\n').filter(Boolean))
        expect(line).toMatch(/^cutover: warning: step \S+ \[aws\.[a-z0-9.-]+\]: .* on Resource "\*"/);
    });
  });
}

for (const subject of [SELF, MANAGED]) policyCheck(subject);
