// Pieces shared by the AWS kinds: call options from the step context, Route 53 INSYNC polling,
// parameter fragments and IAM helpers.
import { z } from 'zod';
import type { CallOpts, Route53Adapter } from '../../adapters/aws.js';
import { parseDuration } from '../../duration.js';
import { formatMs, StepError } from '../../errors.js';
import type { IamNeed, StepContext } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';

export function callOpts(ctx: StepContext): CallOpts {
  return { signal: ctx.signal, onRetry: (m) => ctx.log(m) };
}

export const Region = z
  .string()
  .min(1)
  .optional()
  .describe('AWS region for this step (default: --region, AWS_REGION or the profile)');

export const ZoneId = z.string().min(1).describe('hosted zone id, e.g. Z0123456789ABC');
export const RecordName = z.string().min(1).describe('record name, e.g. db.shop.internal');
export const RecordType = z.enum(['A', 'AAAA', 'CNAME']).describe('record type');

export const SyncParams = {
  syncInterval: Duration.optional().describe(
    'how often to ask Route 53 whether the change is INSYNC (default 2s)',
  ),
  syncTimeout: Duration.optional().describe(
    'give up waiting for INSYNC after this long (default 3m; Route 53 aims at 60s)',
  ),
};

export function ms(v: string | number | undefined, fallback: number): number {
  return v === undefined ? fallback : (parseDuration(v) ?? fallback);
}

/** Polls GetChange until INSYNC, bounded (never the SDK waiter, whose 30 s floor dominates a window). */
export async function waitInsync(
  ctx: StepContext,
  r53: Route53Adapter,
  changeId: string,
  p: { syncInterval?: string | number; syncTimeout?: string | number },
  what: string,
): Promise<void> {
  const timeoutMs = ms(p.syncTimeout, 180_000);
  let last = 'PENDING';
  try {
    await ctx.poll({
      what: `Route 53 change ${changeId} (${what}) INSYNC`,
      timeoutMs,
      intervalMs: ms(p.syncInterval, 2_000),
      check: async () => {
        last = await r53.changeStatus(changeId, callOpts(ctx));
        return { done: last === 'INSYNC', status: last };
      },
    });
  } catch (e) {
    if (ctx.signal.aborted || (e as { code?: string }).code !== 'WAIT_TIMEOUT') throw e;
    throw new StepError(
      'ROUTE53_NOT_INSYNC',
      `Route 53 change ${changeId} (${what}) still ${last} after ${formatMs(timeoutMs)}: Route 53 aims at 60s; check the AWS Health Dashboard, then raise syncTimeout or roll back`,
    );
  }
}

/** The maintenance budget, when the engine hands it to kinds (see the report: not in StepContext yet). */
export function budgetOf(ctx: StepContext): number | undefined {
  const b = (ctx as StepContext & { budgetMs?: unknown }).budgetMs;
  return typeof b === 'number' ? b : undefined;
}

export function secondsText(s: number): string {
  return formatMs(s * 1000);
}

/** A literal value usable in an ARN; templated or missing values become '*'. */
export function literal(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && !/[${}<>*]/.test(v) ? v : undefined;
}

/** IAM needs with optional conditions (the least-privilege policy keeps them). */
export interface AwsIamNeed extends IamNeed {
  condition?: Record<string, Record<string, string[]>>;
}

export function asRecord(p: unknown): Record<string, unknown> {
  return p && typeof p === 'object' ? (p as Record<string, unknown>) : {};
}
