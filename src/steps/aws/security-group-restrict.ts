// aws.security-group.restrict: fence the old database. Every ingress rule on the port is revoked
// except the allowlist; missing allowlist rules are added first. The whole ingress rule set (ids and
// properties) is journaled before, so undo puts it back exactly, matching re-created rules by
// properties. A revoke does not cut connections already open: pair it with mysql.connections.drain.
import { z } from 'zod';
import { StepError } from '../../errors.js';
import { defineKind } from '../../engine/types.js';
import { callOpts, ms, Region } from './common.js';
import {
  coversPort,
  formatPorts,
  formatRule,
  planRestrict,
  type RestrictPlan,
  type SgRule,
} from './rules.js';
import {
  AllowItem,
  allowEntries,
  ec2,
  expectRules,
  GroupId,
  Port,
  Protocol,
  restoreRuleSet,
  type PortRules,
  sgIam,
  snapshotPortRules,
  VerifyTimeout,
} from './security-group.js';

const Params = z
  .object({
    groupId: GroupId,
    port: Port,
    protocol: Protocol,
    allow: z
      .array(AllowItem)
      .describe(
        'sources that keep access: CIDRs, security group ids (sg-...), prefix lists (pl-...), optionally { source, description }',
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
  .strict();
type P = z.infer<typeof Params>;

type Outputs = {
  groupId: string;
  port: number;
  /** The rules on the port before the change (properties): feed them to aws.security-group.restore. */
  before: SgRule[];
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

function wideError(p: P, wide: SgRule[]): StepError {
  return new StepError(
    'SG_WIDE_RULE',
    `security group ${p.groupId}: ${wide.map((r) => `${r.id ?? ''} ${formatRule(p.groupId, r)}`.trim()).join('; ')} also open${wide.length === 1 ? 's' : ''} other ports; revoking would cut them too: narrow the rule to ${formatPorts({ protocol: p.protocol ?? 'tcp', fromPort: p.port, toPort: p.port })} first, or set revokeWideRules: true`,
  );
}

export const securityGroupRestrict = defineKind<P, PortRules, Outputs>({
  kind: 'aws.security-group.restrict',
  summary: 'revoke every ingress rule on a port except an allowlist (undo restores the exact rule set)',
  params: Params,
  outputs: ['groupId', 'port', 'before', 'revoked', 'added', 'addedRuleIds'],
  validate(p, v) {
    const entries = allowEntries(p.allow);
    if (!entries.length)
      v.issue(
        ['allow'],
        `allow is empty: every ${p.protocol ?? 'tcp'}/${p.port} rule of ${p.groupId} will be revoked, including the path this tool uses to reach the database if it goes through this group`,
        'warning',
      );
    const open = entries.findIndex((e) => /^(0\.0\.0\.0\/0|::\/0)$/.test(e.source.trim()));
    if (open >= 0)
      v.issue(
        ['allow', open],
        `${entries[open]!.source} allows everyone: the restrict would fence nothing`,
        'warning',
      );
  },
  iam: sgIam,
  describe(p, snap) {
    const proto = p.protocol ?? 'tcp';
    const note = `note: ${CONNECTIONS_SURVIVE}`;
    if (!snap) {
      const allow = allowEntries(p.allow).map((e) => e.source);
      return [
        `would revoke every ${proto}/${p.port} ingress rule of ${p.groupId} except from ${allow.length ? allow.join(', ') : '(nobody)'}`,
        ...(allow.length
          ? [`would authorize the allowlist sources that have no ${proto}/${p.port} rule yet`]
          : []),
        note,
      ];
    }
    const pl = plan(p, snap.rules);
    const lines = [
      ...pl.add.map((r) => `would authorize ${formatRule(p.groupId, r)}`),
      ...pl.revoke.map((r) => `would revoke ${formatRule(p.groupId, r)}`),
    ];
    if (!lines.length)
      lines.push(`would leave ${p.groupId} as is: only allowlisted sources reach ${proto}/${p.port}`);
    if (pl.revoke.length) lines.push(note);
    return lines;
  },
  snapshot: snapshotPortRules,
  async apply(ctx, p, snap) {
    const api = await ec2(ctx, p.region);
    // Planned from the rules as they are now (not the snapshot): a re-apply after a crash finds
    // half of it done and does only the rest.
    const current = await api.ingressRules(p.groupId, callOpts(ctx));
    const pl = plan(p, current);
    if (pl.wide.length && !p.revokeWideRules) throw wideError(p, pl.wide);
    if (pl.revoke.length) ctx.warn(`${p.groupId}: ${CONNECTIONS_SURVIVE}`);
    const created = await api.authorizeIngress(p.groupId, pl.add, callOpts(ctx));
    await api.revokeIngress(p.groupId, pl.revoke, callOpts(ctx));
    const proto = p.protocol ?? 'tcp';
    return {
      groupId: p.groupId,
      port: p.port,
      before: snap.rules.filter((r) => coversPort(r, proto, p.port)),
      revoked: pl.revoke.length,
      added: pl.add.length,
      addedRuleIds: created.map((r) => r.id).filter((x): x is string => !!x),
    };
  },
  async verify(ctx, p) {
    const api = await ec2(ctx, p.region);
    const proto = p.protocol ?? 'tcp';
    const now = await api.ingressRules(p.groupId, callOpts(ctx));
    const pl = plan(p, now);
    // The expected end state: what stays plus what was to be added.
    await expectRules(
      ctx,
      api,
      p.groupId,
      (r) => coversPort(r, proto, p.port),
      [...pl.keep, ...pl.add],
      ms(p.verifyTimeout, 30_000),
    );
  },
  async isApplied(ctx, p) {
    const api = await ec2(ctx, p.region);
    const pl = plan(p, await api.ingressRules(p.groupId, callOpts(ctx)));
    return pl.add.length === 0 && pl.revoke.length === 0;
  },
  async undo(ctx, p, snap) {
    const proto = snap.protocol ?? p.protocol ?? 'tcp';
    const target = snap.rules.filter((r) => coversPort(r, proto, snap.port));
    const done = await restoreRuleSet(
      ctx,
      { ...p, groupId: snap.groupId, port: snap.port, protocol: proto },
      target,
    );
    const n = done.add.length + done.revoke.length + done.redescribe.length;
    ctx.log(
      n
        ? `${snap.groupId}: restored ${target.length} ${proto}/${snap.port} rule(s) (${done.add.length} re-created, ${done.revoke.length} revoked, ${done.redescribe.length} re-described)`
        : `${snap.groupId}: rules already as before`,
    );
  },
});
