// aws.rds.wait: wait until a cluster (and its instances) or an instance is `available`, e.g. after
// a reboot or a parameter change, before traffic moves to it. Read-only.
import { z } from 'zod';
import { formatMs } from '../../errors.js';
import { defineKind } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import { callOpts, ms } from './common.js';
import { oneTarget, rds, rdsIam, Target, targetLabel } from './rds.js';

const Params = z.lazy(() =>
  z
    .object({
      ...Target,
      status: z.string().optional().describe('the status to wait for (default available)'),
      members: z
        .boolean()
        .optional()
        .describe('for a cluster, also wait for every member instance (default true)'),
      timeout: Duration.optional().describe('give up after this long (default 30m)'),
      interval: Duration.optional().describe('how often to ask (default 10s)'),
    })
    .strict()
    .superRefine(oneTarget),
);
type P = z.infer<typeof Params>;

export const rdsWait = defineKind<P, undefined, { status: string; waitedMs: number }>({
  kind: 'aws.rds.wait',
  summary: 'wait until an RDS/Aurora cluster or instance is available',
  params: Params,
  readOnly: true,
  outputs: ['status', 'waitedMs'],
  iam: rdsIam,
  describe: (p) => [
    `would wait until RDS ${targetLabel(p)} is ${p.status ?? 'available'} (up to ${formatMs(ms(p.timeout, 1_800_000))})`,
  ],
  async apply(ctx, p) {
    const api = await rds(ctx, p.region);
    const want = p.status ?? 'available';
    const started = Date.now();
    const status = await ctx.poll({
      what: `RDS ${targetLabel(p)} to be ${want}`,
      timeoutMs: ms(p.timeout, 1_800_000),
      intervalMs: ms(p.interval, 10_000),
      check: async () => {
        if (p.instance) {
          const i = await api.instance(p.instance, callOpts(ctx));
          return { done: i.status === want, value: i.status, status: i.status };
        }
        const c = await api.cluster(p.cluster!, callOpts(ctx));
        const parts = [`cluster ${c.status}`];
        let ok = c.status === want;
        if (p.members !== false) {
          for (const m of c.members) {
            const i = await api.instance(m.instanceId, callOpts(ctx));
            parts.push(`${m.instanceId} ${i.status}`);
            ok &&= i.status === want;
          }
        }
        return { done: ok, value: c.status, status: parts.join(', ') };
      },
    });
    return { status, waitedMs: Date.now() - started };
  },
});
