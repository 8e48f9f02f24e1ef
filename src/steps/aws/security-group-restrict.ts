// aws.security-group.restrict: fence the old database. On every fenced group, every ingress rule on
// the port is revoked except the allowlist; missing allowlist rules are added first. The groups are
// named (groupId, groupIds) or found on the old RDS instance (instance: every group attached, since
// one open group is enough to let the app in). Each group's whole ingress rule set (ids and
// properties) is journaled before, so undo puts every group back exactly, matching re-created rules
// by properties. A revoke does not cut connections already open: pair it with mysql.connections.drain.
import { z } from 'zod';
import { StepError } from '../../errors.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { asRecord, type AwsIamNeed, callOpts, literal, ms, Region } from './common.js';
import { rds } from './rds.js';
import {
  coversPort,
  formatPorts,
  formatRule,
  planRestrict,
  type RestrictPlan,
  ruleSource,
  type SgRule,
  sourceFields,
} from './rules.js';
import {
  AllowItem,
  allowEntries,
  ec2,
  expectRules,
  GroupId,
  handRestoreLines,
  Port,
  Protocol,
  requireGroups,
  restoreRuleSet,
  sgIam,
  VerifyTimeout,
} from './security-group.js';

const KeepOpen = z.lazy(() =>
  z
    .object({
      cluster: z
        .string()
        .min(1)
        .optional()
        .describe('the new Aurora cluster: none of its groups may be fenced'),
      instance: z.string().min(1).optional().describe('a new DB instance: none of its groups may be fenced'),
      groupIds: z
        .array(GroupId)
        .optional()
        .describe('groups that must stay open, e.g. ${steps.aurora.outputs.securityGroupIds}'),
    })
    .strict()
    .refine((k) => k.cluster !== undefined || k.instance !== undefined || k.groupIds !== undefined, {
      message: 'set cluster, instance or groupIds',
    }),
);

const Params = z.lazy(() =>
  z
    .object({
      groupId: GroupId.optional().describe('the one group to fence (or groupIds, or instance)'),
      groupIds: z.array(GroupId).min(1).optional().describe('several groups to fence, each the same way'),
      instance: z
        .string()
        .min(1)
        .optional()
        .describe(
          'the old RDS DB instance identifier: fence EVERY VPC security group attached to it (DescribeDBInstances), so none is left open',
        ),
      port: Port,
      protocol: Protocol,
      allow: z
        .array(AllowItem)
        .describe(
          'sources that keep access on every fenced group: CIDRs, security group ids (sg-..., e.g. the new side’s group so replication and reverse replication keep their path), prefix lists (pl-...), optionally { source, description }',
        ),
      keepOpen: KeepOpen.optional().describe(
        'the new side (cluster, instance or groupIds): the step fails before any change if a fenced group is attached to it, since the fence would also cut the app off from the new database',
      ),
      description: z
        .string()
        .max(255)
        .optional()
        .describe('description of the allowlist rules this step adds (default "cutover allowlist")'),
      revokeWideRules: z
        .boolean()
        .optional()
        .describe(
          'also revoke rules that open a port range or all traffic (they cut more than the port); off by default: the step fails and names them',
        ),
      region: Region,
      verifyTimeout: VerifyTimeout,
    })
    .strict()
    .superRefine((p, c) => {
      const n = [p.groupId, p.groupIds, p.instance].filter((x) => x !== undefined).length;
      if (n !== 1)
        c.addIssue({
          code: 'custom',
          path: ['groupId'],
          message: 'set exactly one of groupId, groupIds and instance',
        });
    }),
);
type P = z.infer<typeof Params>;

interface GroupRules {
  groupId: string;
  /** Every ingress rule of the group before the change, with ids and all properties. */
  rules: SgRule[];
}

export interface RestrictSnapshot {
  port: number;
  protocol: string;
  groups?: GroupRules[];
  /** Journals written before several groups were supported hold one group here. */
  groupId?: string;
  rules?: SgRule[];
}

type Outputs = {
  /** The first fenced group (the only one unless groupIds or instance is used). */
  groupId: string;
  groupIds: string[];
  port: number;
  /** The first group's rules on the port before the change: feed them to aws.security-group.restore. */
  before: SgRule[];
  /** Every fenced group with its rules on the port before the change. */
  groups: { groupId: string; before: SgRule[] }[];
  revoked: number;
  added: number;
  addedRuleIds: string[];
};

const DEFAULT_DESCRIPTION = 'cutover allowlist';
export const CONNECTIONS_SURVIVE =
  'existing connections survive a security-group revoke (tracked connections stay open): pair this step with mysql.connections.drain';

function plan(p: P, rules: SgRule[]): RestrictPlan {
  return planRestrict(rules, {
    protocol: p.protocol ?? 'tcp',
    port: p.port,
    allow: allowEntries(p.allow),
    description: p.description ?? DEFAULT_DESCRIPTION,
  });
}

function wideError(p: P, groupId: string, wide: SgRule[]): StepError {
  return new StepError(
    'SG_WIDE_RULE',
    `security group ${groupId}: ${wide.map((r) => `${r.id ?? ''} ${formatRule(groupId, r)}`.trim()).join('; ')} also open${wide.length === 1 ? 's' : ''} other ports; revoking would cut them too: narrow the rule to ${formatPorts({ protocol: p.protocol ?? 'tcp', fromPort: p.port, toPort: p.port })} first, or set revokeWideRules: true`,
  );
}

function what(p: P): string {
  if (p.instance) return `every group of RDS instance ${p.instance}`;
  return (p.groupIds ?? [p.groupId!]).join(', ');
}

/** The groups to fence: named, or those attached to the RDS instance. */
async function fencedGroups(ctx: StepContext, p: P): Promise<string[]> {
  if (!p.instance) return p.groupIds ?? [p.groupId!];
  const i = await (await rds(ctx, p.region)).instance(p.instance, callOpts(ctx));
  if (!i.securityGroupIds.length)
    throw new StepError(
      'SG_NONE_ATTACHED',
      `RDS instance ${p.instance} reports no VPC security group: nothing this step can fence; check the instance id`,
    );
  return i.securityGroupIds;
}

/** The groups the new side uses (keepOpen), which the fence must not touch. */
async function keptOpen(ctx: StepContext, p: P): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const k = p.keepOpen;
  if (!k) return out;
  for (const g of k.groupIds ?? []) out.set(g, 'keepOpen.groupIds');
  if (k.cluster || k.instance) {
    const api = await rds(ctx, p.region);
    if (k.cluster) {
      const c = await api.cluster(k.cluster, callOpts(ctx));
      for (const g of c.securityGroupIds) out.set(g, `cluster ${k.cluster}`);
      // A member instance can carry groups of its own.
      for (const m of c.members)
        for (const g of (await api.instance(m.instanceId, callOpts(ctx))).securityGroupIds)
          if (!out.has(g)) out.set(g, `instance ${m.instanceId} of cluster ${k.cluster}`);
    }
    if (k.instance)
      for (const g of (await api.instance(k.instance, callOpts(ctx))).securityGroupIds)
        if (!out.has(g)) out.set(g, `instance ${k.instance}`);
  }
  return out;
}

/**
 * Read-only checks before any change (plan and run): every group exists, none is attached to the
 * new side, and the allowlist keeps a group reference only if that group exists. Returns the groups.
 */
async function checkGroups(ctx: StepContext, p: P): Promise<string[]> {
  const ids = await fencedGroups(ctx, p);
  const refs = allowEntries(p.allow)
    .map((e) => sourceFields(e.source)?.referencedGroupId)
    .filter((x): x is string => !!x);
  await requireGroups(ctx, [...new Set([...ids, ...refs])], p.region);
  const kept = await keptOpen(ctx, p);
  const clash = ids.filter((g) => kept.has(g));
  if (clash.length)
    throw new StepError(
      'SG_FENCE_ON_TARGET',
      `${clash.map((g) => `${g} is attached to ${kept.get(g)}`).join('; ')}: fencing it would also cut the app off from the new database; give the new side its own group first`,
    );
  return ids;
}

function snapGroups(snap: RestrictSnapshot): GroupRules[] {
  return snap.groups ?? (snap.groupId ? [{ groupId: snap.groupId, rules: snap.rules ?? [] }] : []);
}

export const securityGroupRestrict = defineKind<P, RestrictSnapshot, Outputs>({
  kind: 'aws.security-group.restrict',
  summary:
    'revoke every ingress rule on a port except an allowlist, on one group, several, or every group of an RDS instance (undo restores each exact rule set)',
  params: Params,
  outputs: ['groupId', 'groupIds', 'port', 'before', 'groups', 'revoked', 'added', 'addedRuleIds'],
  validate(p, v) {
    const entries = allowEntries(p.allow);
    if (!entries.length)
      v.issue(
        ['allow'],
        `allow is empty: every ${p.protocol ?? 'tcp'}/${p.port} rule of ${what(p)} will be revoked, including the path this tool and replication use to reach the database if they go through it`,
        'warning',
      );
    const open = entries.findIndex((e) => /^(0\.0\.0\.0\/0|::\/0)$/.test(e.source.trim()));
    if (open >= 0)
      v.issue(['allow', open], `${entries[open]!.source} allows everyone: the restrict would fence nothing`);
  },
  iam(p): AwsIamNeed[] {
    const r = asRecord(p);
    const region = literal(r.region) ?? '*';
    const keep = asRecord(r.keepOpen);
    // Instances read: the fenced one, keepOpen's, and a keepOpen cluster's members (not named).
    const db = (id: unknown) => (literal(id) ? `arn:aws:rds:${region}:*:db:${id}` : '*');
    const instances = [
      ...(r.instance !== undefined ? [db(r.instance)] : []),
      ...(keep.instance !== undefined ? [db(keep.instance)] : []),
      ...(keep.cluster !== undefined ? [`arn:aws:rds:${region}:*:db:*`] : []),
    ];
    const anyDb = instances.find((x) => x === '*' || x.endsWith(':db:*'));
    return [
      ...sgIam(p),
      ...(instances.length
        ? [
            {
              mode: 'read' as const,
              actions: ['rds:DescribeDBInstances'],
              resources: anyDb ? [anyDb] : instances,
            },
          ]
        : []),
      ...(keep.cluster !== undefined
        ? [
            {
              mode: 'read' as const,
              actions: ['rds:DescribeDBClusters'],
              resources: [literal(keep.cluster) ? `arn:aws:rds:${region}:*:cluster:${keep.cluster}` : '*'],
            },
          ]
        : []),
    ];
  },
  describe(p, snap) {
    const proto = p.protocol ?? 'tcp';
    const note = `note: ${CONNECTIONS_SURVIVE}`;
    if (!snap) {
      const allow = allowEntries(p.allow).map((e) => e.source);
      return [
        `would revoke every ${proto}/${p.port} ingress rule of ${what(p)} except from ${allow.length ? allow.join(', ') : '(nobody)'}`,
        ...(allow.length
          ? [`would authorize the allowlist sources that have no ${proto}/${p.port} rule yet`]
          : []),
        note,
      ];
    }
    const lines: string[] = [];
    let revokes = 0;
    for (const g of snapGroups(snap)) {
      const pl = plan(p, g.rules);
      revokes += pl.revoke.length;
      lines.push(
        ...pl.add.map((r) => `would authorize ${formatRule(g.groupId, r)}`),
        ...pl.revoke.map((r) => `would revoke ${formatRule(g.groupId, r)}`),
      );
    }
    if (!lines.length)
      lines.push(`would leave ${what(p)} as is: only allowlisted sources reach ${proto}/${p.port}`);
    if (revokes) lines.push(note);
    return lines;
  },
  preflight: async (ctx, p) => {
    await checkGroups(ctx, p);
  },
  async snapshot(ctx, p) {
    // Also here, so the checks hold whether or not the engine calls preflight.
    const ids = await checkGroups(ctx, p);
    const api = await ec2(ctx, p.region);
    const groups: GroupRules[] = [];
    for (const groupId of ids)
      groups.push({ groupId, rules: await api.ingressRules(groupId, callOpts(ctx)) });
    const proto = p.protocol ?? 'tcp';
    const fenced = groups.some((g) => plan(p, g.rules).revoke.length > 0);
    if (!fenced) {
      const open = groups.flatMap((g) =>
        g.rules.filter((r) => coversPort(r, proto, p.port)).map((r) => `${g.groupId} from ${ruleSource(r)}`),
      );
      throw new StepError(
        'SG_FENCES_NOTHING',
        `${what(p)}: no ${proto}/${p.port} ingress rule to revoke (${open.length ? `only allowlisted: ${open.join(', ')}` : 'none on the port'}): the fence would change nothing; check the group ids and the port (the old database's groups: DescribeDBInstances VpcSecurityGroups)`,
      );
    }
    return { port: p.port, protocol: proto, groups };
  },
  async apply(ctx, p, snap) {
    const api = await ec2(ctx, p.region);
    const proto = p.protocol ?? 'tcp';
    // Planned from the rules as they are now (not the snapshot): a re-apply after a crash finds
    // part of it done and does only the rest. Every group is planned before any change.
    const plans: { groupId: string; pl: RestrictPlan }[] = [];
    for (const g of snapGroups(snap))
      plans.push({ groupId: g.groupId, pl: plan(p, await api.ingressRules(g.groupId, callOpts(ctx))) });
    for (const { groupId, pl } of plans)
      if (pl.wide.length && !p.revokeWideRules) throw wideError(p, groupId, pl.wide);
    if (plans.some(({ pl }) => pl.revoke.length)) ctx.warn(`${what(p)}: ${CONNECTIONS_SURVIVE}`);
    const created: SgRule[] = [];
    for (const { groupId, pl } of plans) {
      created.push(...(await api.authorizeIngress(groupId, pl.add, callOpts(ctx))));
      await api.revokeIngress(groupId, pl.revoke, callOpts(ctx));
    }
    const groups = snapGroups(snap).map((g) => ({
      groupId: g.groupId,
      before: g.rules.filter((r) => coversPort(r, proto, p.port)),
    }));
    return {
      groupId: groups[0]!.groupId,
      groupIds: groups.map((g) => g.groupId),
      port: p.port,
      before: groups[0]!.before,
      groups,
      revoked: plans.reduce((n, x) => n + x.pl.revoke.length, 0),
      added: plans.reduce((n, x) => n + x.pl.add.length, 0),
      addedRuleIds: created.map((r) => r.id).filter((x): x is string => !!x),
    };
  },
  async verify(ctx, p, snap) {
    const api = await ec2(ctx, p.region);
    const proto = p.protocol ?? 'tcp';
    for (const g of snapGroups(snap)) {
      const pl = plan(p, await api.ingressRules(g.groupId, callOpts(ctx)));
      // The expected end state: what stays plus what was to be added.
      await expectRules(
        ctx,
        api,
        g.groupId,
        (r) => coversPort(r, proto, p.port),
        [...pl.keep, ...pl.add],
        ms(p.verifyTimeout, 30_000),
      );
    }
  },
  async isApplied(ctx, p, snap) {
    const api = await ec2(ctx, p.region);
    for (const g of snapGroups(snap)) {
      const pl = plan(p, await api.ingressRules(g.groupId, callOpts(ctx)));
      if (pl.add.length || pl.revoke.length) return false;
    }
    return true;
  },
  restoreHint(p, snap) {
    if (!snap)
      return [
        `compare the ${p.protocol ?? 'tcp'}/${p.port} rules of ${what(p)} with your records: none were journaled`,
      ];
    // What the fence did, planned from the journaled rules: reversing it is the undo's work.
    const lines = snapGroups(snap).flatMap((g) =>
      handRestoreLines(g.groupId, { ...plan(p, g.rules), redescribe: [] }, 'the fence'),
    );
    return lines.length ? lines : [`${what(p)}: the fence changed no rule`];
  },
  async undo(ctx, p, snap) {
    const proto = snap.protocol ?? p.protocol ?? 'tcp';
    for (const g of snapGroups(snap)) {
      const target = g.rules.filter((r) => coversPort(r, proto, snap.port));
      const done = await restoreRuleSet(
        ctx,
        { ...p, groupId: g.groupId, port: snap.port, protocol: proto },
        target,
      );
      const n = done.add.length + done.revoke.length + done.redescribe.length;
      ctx.log(
        n
          ? `${g.groupId}: restored ${target.length} ${proto}/${snap.port} rule(s) (${done.add.length} re-created, ${done.revoke.length} revoked, ${done.redescribe.length} re-described)`
          : `${g.groupId}: rules already as before`,
      );
    }
  },
});
