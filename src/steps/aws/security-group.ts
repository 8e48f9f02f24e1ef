// What aws.security-group.restrict and .restore share: parameter shapes, putting a rule set back by
// properties, and checking the group's rules against an expectation.
import { z } from 'zod';
import { type Ec2Adapter, ec2Adapter } from '../../adapters/aws.js';
import { StepError } from '../../errors.js';
import type { StepContext } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import { asRecord, type AwsIamNeed, callOpts, literal, ms } from './common.js';
import {
  type AllowEntry,
  coversPort,
  diffRuleSets,
  formatPorts,
  formatRule,
  normalizeProtocol,
  planRestore,
  type RestorePlan,
  ruleKey,
  ruleSource,
  type SgRule,
  sourceFields,
} from './rules.js';

export const GroupId = z
  .string()
  .regex(/^sg-[0-9a-z]+$/i, 'a security group id looks like sg-0123abcd')
  .describe('security group id, e.g. sg-0abc1234');
export const Port = z.number().int().min(0).max(65535).describe('the database port, e.g. 3306');
export const Protocol = z.enum(['tcp', 'udp']).optional().describe('protocol of the port (default tcp)');

const SourceText = z.string().refine((s) => sourceFields(s) !== undefined, {
  message: 'expected a CIDR (10.0.5.10/32), a security group id (sg-...) or a prefix list id (pl-...)',
});

export const AllowItem = z.lazy(() =>
  z.union([
    SourceText,
    z.object({ source: SourceText, description: z.string().max(255).optional() }).strict(),
  ]),
);

export function allowEntries(allow: z.infer<typeof AllowItem>[]): AllowEntry[] {
  return allow.map((a) => (typeof a === 'string' ? { source: a } : a));
}

/** A rule as restrict outputs it (properties, maybe an id), or a short form for the step's port. */
export const RuleSpec = z.lazy(() =>
  z.union([
    z
      .object({
        id: z.string().optional(),
        protocol: z.string(),
        fromPort: z.number().int(),
        toPort: z.number().int(),
        cidrIpv4: z.string().optional(),
        cidrIpv6: z.string().optional(),
        referencedGroupId: z.string().optional(),
        referencedUserId: z.string().optional(),
        prefixListId: z.string().optional(),
        description: z.string().optional(),
      })
      .strict(),
    z
      .object({
        source: SourceText,
        description: z.string().max(255).optional(),
      })
      .strict(),
  ]),
);

export function toRules(specs: z.infer<typeof RuleSpec>[], protocol: string, port: number): SgRule[] {
  return specs.map((s) => {
    if ('source' in s) {
      const r: SgRule = {
        protocol: normalizeProtocol(protocol),
        fromPort: port,
        toPort: port,
        ...sourceFields(s.source)!,
      };
      if (s.description) r.description = s.description;
      return r;
    }
    const { id: _id, ...rest } = s;
    return { ...rest, protocol: normalizeProtocol(rest.protocol) } as SgRule;
  });
}

export function ec2(ctx: StepContext, region: string | undefined): Promise<Ec2Adapter> {
  return ctx.adapters.use(ec2Adapter, region);
}

/** Authorize first, then revoke: sources that stay never lose access in between. */
export async function applyRestore(
  ctx: StepContext,
  api: Ec2Adapter,
  groupId: string,
  plan: RestorePlan,
): Promise<void> {
  const o = callOpts(ctx);
  await api.authorizeIngress(groupId, plan.add, o);
  await api.setDescriptions(groupId, plan.redescribe, o);
  await api.revokeIngress(groupId, plan.revoke, o);
}

/** "tcp/3306 from 10.0.0.0/24 (app) on sg-0abc": a rule as a human puts it back or takes it away. */
export function ruleOn(groupId: string, r: SgRule): string {
  return `${formatPorts(r)} from ${ruleSource(r)}${r.description ? ` (${r.description})` : ''} on ${groupId}`;
}

/**
 * What a human does to reverse a change from `before` to `after` on one group (the undo's work,
 * said from the snapshot): put back what was revoked, take away what was added.
 */
export function handRestoreLines(groupId: string, change: RestorePlan, by: string): string[] {
  return [
    ...change.revoke.map((r) => `put back ${ruleOn(groupId, r)} (was revoked by ${by})`),
    ...change.redescribe.map(
      (c) =>
        `describe ${ruleOn(groupId, { ...c.rule, description: undefined })} as "${c.rule.description ?? ''}" again (${by} made it "${c.description ?? ''}")`,
    ),
    ...change.add.map((r) => `revoke ${ruleOn(groupId, r)} (was added by ${by})`),
  ];
}

export function restoreLines(groupId: string, plan: RestorePlan): string[] {
  return [
    ...plan.add.map((r) => `would authorize ${formatRule(groupId, r)}`),
    ...plan.redescribe.map(
      (c) =>
        `would describe ${formatRule(groupId, { ...c.rule, description: undefined })} (${c.rule.description ?? ''} → ${c.description ?? ''})`,
    ),
    ...plan.revoke.map((r) => `would revoke ${formatRule(groupId, r)}`),
  ];
}

/**
 * Makes the group's rules on the port equal `target` by properties, then reads them back until they
 * are (bounded). Safe to repeat: a second run finds nothing to change.
 */
export async function restoreRuleSet(
  ctx: StepContext,
  p: { groupId: string; port: number; protocol?: string; region?: string; verifyTimeout?: string | number },
  target: SgRule[],
  scope: (r: SgRule) => boolean = (r) => coversPort(r, p.protocol ?? 'tcp', p.port),
): Promise<RestorePlan> {
  const api = await ec2(ctx, p.region);
  const current = await api.ingressRules(p.groupId, callOpts(ctx));
  const plan = planRestore(current, target, scope);
  if (plan.add.length + plan.revoke.length + plan.redescribe.length === 0) return plan;
  await applyRestore(ctx, api, p.groupId, plan);
  if (ctx.adapters.mode === 'live')
    await expectRules(ctx, api, p.groupId, scope, target, ms(p.verifyTimeout, 30_000));
  return plan;
}

/** Polls DescribeSecurityGroupRules until the rules in scope equal `expected` by properties. */
export async function expectRules(
  ctx: StepContext,
  api: Ec2Adapter,
  groupId: string,
  scope: (r: SgRule) => boolean,
  expected: SgRule[],
  timeoutMs: number,
): Promise<void> {
  const keys = new Set(expected.map(ruleKey));
  let last = '';
  try {
    await ctx.poll({
      what: `security group ${groupId} rules`,
      timeoutMs,
      intervalMs: 500,
      check: async () => {
        const now = await api.ingressRules(groupId, callOpts(ctx));
        const inScope = now.filter((r) => scope(r) || keys.has(ruleKey(r)));
        const d = diffRuleSets(inScope, expected);
        last = [
          ...d.missing.map((r) => `missing ${formatRule(groupId, r)}`),
          ...d.extra.map((r) => `unexpected ${formatRule(groupId, r)}`),
        ].join('; ');
        return { done: !last, status: last };
      },
    });
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    throw new StepError(
      'SG_RULES_MISMATCH',
      `security group ${groupId} does not have the expected rules after the change (${last}): check for another process editing the group`,
    );
  }
}

/** What restrict and restore need: read any group, change rules only on the groups the runbook names. */
export function sgIam(params: unknown): AwsIamNeed[] {
  const p = asRecord(params);
  const region = literal(p.region) ?? '*';
  const listed = Array.isArray(p.groupIds) ? p.groupIds : p.groupIds === undefined ? [] : [undefined];
  const named = p.groupId === undefined ? listed : [p.groupId, ...listed];
  // Groups found through an RDS instance are not named by the runbook.
  const ids = p.instance === undefined ? named.map(literal) : [undefined];
  const resources = ids.every((x) => x)
    ? ids.map((id) => `arn:aws:ec2:${region}:*:security-group/${id}`)
    : ['*'];
  return [
    {
      mode: 'read',
      actions: ['ec2:DescribeSecurityGroupRules', 'ec2:DescribeSecurityGroups'],
      resources: ['*'],
    },
    {
      mode: 'write',
      actions: [
        'ec2:AuthorizeSecurityGroupIngress',
        'ec2:RevokeSecurityGroupIngress',
        'ec2:ModifySecurityGroupRules',
      ],
      resources: resources.length ? resources : ['*'],
    },
  ];
}

/** Fails (AWS_NOT_FOUND, naming the group) before any change when a group does not exist. */
export async function requireGroups(ctx: StepContext, groupIds: string[], region: string | undefined) {
  // DescribeSecurityGroupRules answers an empty list for a group that does not exist: ask for the group.
  const api = await ec2(ctx, region);
  return api.groups(groupIds, callOpts(ctx));
}

export const VerifyTimeout = Duration.optional().describe(
  'how long to wait for DescribeSecurityGroupRules to show the change (default 30s)',
);
