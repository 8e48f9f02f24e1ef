// aws.security-group.restore: the explicit opposite of restrict, for a runbook that reopens the group
// as a step of its own (or a `rollback:` override): make the group's rules on the port equal a rule
// set, taken from an earlier restrict step's outputs (${steps.fence.outputs.before}) or listed.
import { z } from 'zod';
import { defineKind } from '../../engine/types.js';
import { callOpts, Region } from './common.js';
import { coversPort, planRestore, ruleKey, type SgRule } from './rules.js';
import {
  ec2,
  GroupId,
  Port,
  Protocol,
  restoreLines,
  restoreRuleSet,
  RuleSpec,
  type PortRules,
  sgIam,
  snapshotPortRules,
  VerifyTimeout,
  toRules,
} from './security-group.js';

const Params = z
  .object({
    groupId: GroupId,
    port: Port,
    protocol: Protocol,
    rules: z
      .array(RuleSpec)
      .describe(
        'the rule set to restore on the port: ${steps.<restrict step>.outputs.before}, or a list of { source, description }',
      ),
    region: Region,
    verifyTimeout: VerifyTimeout,
  })
  .strict();
type P = z.infer<typeof Params>;

export const securityGroupRestore = defineKind<P, PortRules, { added: number; revoked: number }>({
  kind: 'aws.security-group.restore',
  summary: 'make the ingress rules on a port equal a rule set (e.g. the one an earlier restrict journaled)',
  params: Params,
  outputs: ['added', 'revoked'],
  iam: sgIam,
  describe(p, snap) {
    const proto = p.protocol ?? 'tcp';
    const target = toRules(p.rules, proto, p.port);
    if (!snap)
      return [`would set the ${proto}/${p.port} ingress rules of ${p.groupId} to ${target.length} rule(s)`];
    const lines = restoreLines(
      p.groupId,
      planRestore(snap.rules, target, (r) => coversPort(r, proto, p.port)),
    );
    return lines.length ? lines : [`would leave ${p.groupId} as is: the rules already match`];
  },
  snapshot: snapshotPortRules,
  async apply(ctx, p) {
    const plan = await restoreRuleSet(ctx, p, toRules(p.rules, p.protocol ?? 'tcp', p.port));
    return { added: plan.add.length, revoked: plan.revoke.length };
  },
  async isApplied(ctx, p) {
    const api = await ec2(ctx, p.region);
    const proto = p.protocol ?? 'tcp';
    const plan = planRestore(
      await api.ingressRules(p.groupId, callOpts(ctx)),
      toRules(p.rules, proto, p.port),
      (r) => coversPort(r, proto, p.port),
    );
    return plan.add.length + plan.revoke.length + plan.redescribe.length === 0;
  },
  async undo(ctx, p, snap) {
    // Back to the rules on the port before this step, plus the keys this step may have touched.
    const proto = snap.protocol;
    const touched = toRules(p.rules, proto, snap.port);
    const keys = new Set(touched.map(ruleKey));
    const inScope = (r: SgRule) => coversPort(r, proto, snap.port) || keys.has(ruleKey(r));
    await restoreRuleSet(
      ctx,
      { ...p, groupId: snap.groupId, port: snap.port, protocol: proto },
      snap.rules.filter(inScope),
      inScope,
    );
  },
});
