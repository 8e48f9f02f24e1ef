// aws.route53.set-ttl: lower a record's TTL long before the window, so that during the flip resolvers
// hold the old answer for seconds, not the hour the record usually carries. Undo puts the TTL back
// (only the TTL: a flip in between keeps its value).
import { z } from 'zod';
import { route53Adapter } from '../../adapters/aws.js';
import { formatMs, StepError } from '../../errors.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import {
  asRecord,
  type AwsIamNeed,
  budgetOf,
  callOpts,
  RecordName,
  RecordType,
  SyncParams,
  waitInsync,
  ZoneId,
} from './common.js';
import { displayName, formatRecord, normalizeZoneId, type RecordSet, sameSlot } from './records.js';
import { changeRecordIam, readRecordIam } from './route53-iam.js';

const Params = z.lazy(() =>
  z
    .object({
      zoneId: ZoneId,
      name: RecordName,
      type: RecordType,
      ttl: z.number().int().min(0).max(2147483647).describe('the new TTL in seconds, e.g. 5'),
      setIdentifier: z.string().optional().describe('SetIdentifier of a weighted/latency/failover record'),
      ...SyncParams,
    })
    .strict(),
);
type P = z.infer<typeof Params>;

interface Snapshot {
  zoneId: string;
  record: RecordSet;
}

type Outputs = {
  previousTtl: number;
  ttl: number;
  changeId?: string;
  safeAfter: string;
  /** How long Route 53 took to report the change INSYNC: this zone's propagation, for predictions. */
  insyncMs?: number;
};

function slot(p: P): RecordSet {
  return { Name: p.name, Type: p.type, ...(p.setIdentifier ? { SetIdentifier: p.setIdentifier } : {}) };
}

async function currentRecord(ctx: StepContext, p: P): Promise<RecordSet | undefined> {
  const r53 = await ctx.adapters.use(route53Adapter, undefined);
  const at = await r53.recordSetsAt(p.zoneId, p.name, callOpts(ctx));
  return at.find((r) => sameSlot(r, slot(p)));
}

function label(p: P): string {
  return `${displayName(p.name)} ${p.type}${p.setIdentifier ? ` [${p.setIdentifier}]` : ''} in zone ${normalizeZoneId(p.zoneId)}`;
}

export const routeSetTtl = defineKind<P, Snapshot, Outputs>({
  kind: 'aws.route53.set-ttl',
  summary: 'lower a record’s TTL ahead of the window (undo restores it)',
  params: Params,
  outputs: ['previousTtl', 'ttl', 'changeId', 'safeAfter', 'insyncMs'],
  validate(p, v) {
    if (v.budgetMs !== undefined && p.ttl * 1000 > v.budgetMs)
      v.issue(
        ['ttl'],
        `TTL ${p.ttl}s exceeds the maintenance budget (${formatMs(v.budgetMs)}): waiting out cached answers after the flip would not fit`,
        'warning',
      );
  },
  iam(p): AwsIamNeed[] {
    const r = asRecord(p);
    return [...readRecordIam(r), ...changeRecordIam(r, [String(r.type ?? '')], ['UPSERT'])];
  },
  describe(p, snap) {
    if (!snap) return [`would set the TTL of ${label(p)} to ${p.ttl}s`];
    const after = { ...snap.record, TTL: p.ttl };
    if (snap.record.TTL === p.ttl) return [`would leave ${label(p)} as is: TTL already ${p.ttl}s`];
    const lines = [`would upsert ${label(p)} (${formatRecord(snap.record)} → ${formatRecord(after)})`];
    if ((snap.record.TTL ?? 0) > p.ttl)
      lines.push(
        `note: resolvers may keep answers cached for the old TTL (${snap.record.TTL}s): run this step at least ${formatMs((snap.record.TTL ?? 0) * 1000)} before the flip`,
      );
    return lines;
  },
  // Read-only and independent of earlier steps: a missing record fails before the run starts.
  preflight: async (ctx, p) => {
    await routeSetTtl.snapshot!(ctx, p);
  },
  async snapshot(ctx, p) {
    const record = await currentRecord(ctx, p);
    if (!record)
      throw new StepError(
        'RECORD_NOT_FOUND',
        `zone ${normalizeZoneId(p.zoneId)} has no ${p.type} record ${displayName(p.name)}${p.setIdentifier ? ` with SetIdentifier ${p.setIdentifier}` : ''}: check name, type and zone id`,
      );
    if (record.AliasTarget)
      throw new StepError(
        'ALIAS_HAS_NO_TTL',
        `${label(p)} is an alias record: its TTL is the target's, nothing to lower`,
      );
    return { zoneId: normalizeZoneId(p.zoneId), record };
  },
  async apply(ctx, p, snap) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    const current = (await currentRecord(ctx, p)) ?? snap.record;
    const previousTtl = snap.record.TTL ?? 0;
    const safeAfter = new Date(Date.now() + previousTtl * 1000).toISOString();
    if (current.TTL === p.ttl) return { previousTtl, ttl: p.ttl, safeAfter };
    const budget = budgetOf(ctx);
    if (budget !== undefined && p.ttl * 1000 > budget)
      ctx.warn(`${label(p)}: TTL ${p.ttl}s exceeds the maintenance budget (${formatMs(budget)})`);
    const res = await r53.change(
      snap.zoneId,
      [{ Action: 'UPSERT', ResourceRecordSet: { ...current, TTL: p.ttl } }],
      {
        ...callOpts(ctx),
        before: [current],
        comment: `cutover ${ctx.runId} ${ctx.stepId}: TTL ${current.TTL} → ${p.ttl}`,
      },
    );
    if (previousTtl > p.ttl)
      ctx.warn(
        `${label(p)}: resolvers may cache the old TTL (${previousTtl}s) until ${safeAfter}: flip no earlier than that`,
      );
    return { previousTtl, ttl: p.ttl, changeId: res.changeId, safeAfter };
  },
  async verify(ctx, p, _snap, out) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    if (out.changeId) {
      const t0 = Date.now();
      await waitInsync(ctx, r53, out.changeId, p, `TTL of ${label(p)}`);
      // Journaled with the outputs (the engine keeps this object): the prediction reads it back.
      out.insyncMs = Date.now() - t0;
    }
    const now = await currentRecord(ctx, p);
    if (now?.TTL !== p.ttl)
      throw new StepError(
        'TTL_NOT_SET',
        `${label(p)} has TTL ${now?.TTL ?? '(no record)'} after the change, expected ${p.ttl}: check for another process editing the zone`,
      );
  },
  async isApplied(ctx, p) {
    return (await currentRecord(ctx, p))?.TTL === p.ttl;
  },
  restoreHint: (p, snap) =>
    snap?.record.TTL !== undefined
      ? [`set the TTL of ${label(p)} back to ${snap.record.TTL}s (was lowered to ${p.ttl}s)`]
      : [`compare the TTL of ${label(p)} with your records: it was not journaled`],
  async undo(ctx, p, snap) {
    const r53 = await ctx.adapters.use(route53Adapter, undefined);
    const now = await currentRecord(ctx, p);
    if (!now || now.AliasTarget || now.TTL === snap.record.TTL) return;
    const res = await r53.change(
      snap.zoneId,
      [{ Action: 'UPSERT', ResourceRecordSet: { ...now, TTL: snap.record.TTL! } }],
      {
        ...callOpts(ctx),
        before: [now],
        comment: `cutover ${ctx.runId} ${ctx.stepId} undo: TTL back to ${snap.record.TTL}`,
      },
    );
    await waitInsync(ctx, r53, res.changeId, p, `TTL of ${label(p)} back to ${snap.record.TTL}s`);
  },
});
