import { z } from 'zod';
import { parseDuration } from '../../duration.js';
import { formatMs } from '../../errors.js';
import { defineKind } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';

const Params = z.lazy(() => z.object({ duration: Duration, reason: z.string().optional() }).strict());

export const wait = defineKind<z.infer<typeof Params>>({
  kind: 'wait',
  summary: 'wait a fixed duration (e.g. for caches to expire)',
  params: Params,
  readOnly: true,
  describe: (p) => [`would wait ${formatMs(parseDuration(p.duration)!)}${p.reason ? ` (${p.reason})` : ''}`],
  async apply(ctx, p) {
    const ms = parseDuration(p.duration)!;
    ctx.progress({ label: p.reason ?? `waiting ${formatMs(ms)}`, deadline: Date.now() + ms });
    await ctx.sleep(ms);
  },
});
