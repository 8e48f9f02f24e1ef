// aws.security-group.restore: the explicit opposite of restrict, for a runbook that reopens the group
// as a step of its own (or a `rollback:` override): make the group's rules on the port equal a rule
// set, taken from an earlier restrict step's outputs (${steps.fence.outputs.before}) or listed; or,
// for a restrict that fenced several groups, put every group back (${steps.fence.outputs.groups}).
import { z } from 'zod';
import { defineKind, type StepContext } from '../../engine/types.js';
import { asRecord, callOpts, Region } from './common.js';
import { coversPort, planRestore, ruleKey, type SgRule } from './rules.js';
import {
  ec2,
  GroupId,
  handRestoreLines,
  Port,
  Protocol,
  requireGroups,
  RuleSpec,
  restoreLines,
  restoreRuleSet,
  sgIam,
  toRules,
  VerifyTimeout,
} from './security-group.js';

const Params = z.lazy(() =>
  z
    .object({
      groupId: GroupId.optional().describe('the group to restore (or groups)'),
      port: Port,
      protocol: Protocol,
      rules: z
        .array(RuleSpec)
        .optional()
        .describe(
          'the rule set to restore on the port: ${steps.<restrict step>.outputs.before}, or a list of { source, description }',
        ),
      groups: z
        .array(z.object({ groupId: GroupId, before: z.array(RuleSpec) }).strict())
        .min(1)
        .optional()
        .describe(
          'every group a restrict fenced, with its rules before: ${steps.<restrict step>.outputs.groups}',
        ),
      region: Region,
      verifyTimeout: VerifyTimeout,
    })
    .strict()
    .superRefine((p, c) => {
      const single = p.groupId !== undefined && p.rules !== undefined;
      const none = p.groupId === undefined && p.rules === undefined;
      if (!(single && !p.groups) && !(none && p.groups))
        c.addIssue({ code: 'custom', path: ['groupId'], message: 'set groupId and rules, or groups' });
    }),
);
type P = z.infer<typeof Params>;

interface GroupRules {
  groupId: string;
  rules: SgRule[];
}

export interface RestoreSnapshot {
  port: number;
  protocol: string;
  /** Every ingress rule of each group before the step. */
  groups?: GroupRules[];
  /** Journals written before several groups were supported hold one group here. */
  groupId?: string;
  rules?: SgRule[];
}

/** Each group with the rules to put back on the port. */
function targets(p: P): { groupId: string; rules: SgRule[] }[] {
  const proto = p.protocol ?? 'tcp';
  if (p.groups) return p.groups.map((g) => ({ groupId: g.groupId, rules: toRules(g.before, proto, p.port) }));
  return [{ groupId: p.groupId!, rules: toRules(p.rules!, proto, p.port) }];
}

function snapGroups(snap: RestoreSnapshot): GroupRules[] {
  return snap.groups ?? (snap.groupId ? [{ groupId: snap.groupId, rules: snap.rules ?? [] }] : []);
}

async function current(ctx: StepContext, p: P, groupId: string): Promise<SgRule[]> {
  return (await ec2(ctx, p.region)).ingressRules(groupId, callOpts(ctx));
}

export const securityGroupRestore = defineKind<P, RestoreSnapshot, { added: number; revoked: number }>({
  kind: 'aws.security-group.restore',
  summary: 'make the ingress rules on a port equal a rule set, on one group or every group a restrict fenced',
  params: Params,
  outputs: ['added', 'revoked'],
  iam: (p) => {
    const r = asRecord(p);
    if (r.groups === undefined) return sgIam(p);
    // ${steps.fence.outputs.groups} is only known at run time: then no group can be named.
    const ids = Array.isArray(r.groups) ? r.groups.map((g) => asRecord(g).groupId) : [undefined];
    return sgIam({ ...r, groupIds: ids });
  },
  describe(p, snap) {
    const proto = p.protocol ?? 'tcp';
    if (!snap)
      return targets(p).map(
        (t) => `would set the ${proto}/${p.port} ingress rules of ${t.groupId} to ${t.rules.length} rule(s)`,
      );
    const lines: string[] = [];
    for (const t of targets(p)) {
      const before = snapGroups(snap).find((g) => g.groupId === t.groupId)?.rules ?? [];
      const plan = restoreLines(
        t.groupId,
        planRestore(before, t.rules, (r) => coversPort(r, proto, p.port)),
      );
      lines.push(...(plan.length ? plan : [`would leave ${t.groupId} as is: the rules already match`]));
    }
    return lines;
  },
  restoreHint(p, snap) {
    const proto = p.protocol ?? 'tcp';
    if (!snap)
      return targets(p).map(
        (t) => `compare the ${proto}/${p.port} rules of ${t.groupId} with your records: none were journaled`,
      );
    return targets(p).flatMap((t) => {
      const before = snapGroups(snap).find((g) => g.groupId === t.groupId)?.rules ?? [];
      const change = planRestore(before, t.rules, (r) => coversPort(r, proto, p.port));
      const lines = handRestoreLines(t.groupId, change, 'the restore');
      return lines.length ? lines : [`${t.groupId}: the restore changed no rule`];
    });
  },
  preflight: async (ctx, p) => {
    await requireGroups(
      ctx,
      targets(p).map((t) => t.groupId),
      p.region,
    );
  },
  async snapshot(ctx, p) {
    const ids = targets(p).map((t) => t.groupId);
    await requireGroups(ctx, ids, p.region);
    const groups: GroupRules[] = [];
    for (const groupId of ids) groups.push({ groupId, rules: await current(ctx, p, groupId) });
    return { port: p.port, protocol: p.protocol ?? 'tcp', groups };
  },
  async apply(ctx, p) {
    let added = 0;
    let revoked = 0;
    for (const t of targets(p)) {
      const plan = await restoreRuleSet(ctx, { ...p, groupId: t.groupId }, t.rules);
      added += plan.add.length;
      revoked += plan.revoke.length;
    }
    return { added, revoked };
  },
  async isApplied(ctx, p) {
    const proto = p.protocol ?? 'tcp';
    for (const t of targets(p)) {
      const plan = planRestore(await current(ctx, p, t.groupId), t.rules, (r) =>
        coversPort(r, proto, p.port),
      );
      if (plan.add.length + plan.revoke.length + plan.redescribe.length) return false;
    }
    return true;
  },
  async undo(ctx, p, snap) {
    // Back to the rules on the port before this step, plus the keys this step may have touched.
    const proto = snap.protocol;
    for (const g of snapGroups(snap)) {
      const touched = targets(p).find((t) => t.groupId === g.groupId)?.rules ?? [];
      const keys = new Set(touched.map(ruleKey));
      const inScope = (r: SgRule) => coversPort(r, proto, snap.port) || keys.has(ruleKey(r));
      await restoreRuleSet(
        ctx,
        { ...p, groupId: g.groupId, port: snap.port, protocol: proto },
        g.rules.filter(inScope),
        inScope,
      );
    }
  },
});
