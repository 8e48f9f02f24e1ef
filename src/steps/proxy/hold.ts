// proxy.hold: from here on, new connections through the proxy wait (in its listen backlog) instead
// of reaching the old server or failing, while the replica catches up and replication stops; the
// proxy.flip that follows lets them in, to the new server. Applications see a slow connect, not an
// error: fewer failed writes for the same window. Connections already open are untouched (the drain
// ends them). Undo lets held connections in; a hold also ends on its own after maxHold, so a run that
// stalls or dies cannot keep the application waiting. (A killed run leaves the limit at 1: resume or
// rollback puts it back, and restoreHint says how by hand.)
import { z } from 'zod';
import { defineKind } from '../../engine/types.js';
import { formatMs, StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { ms } from '../mysql/common.js';
import { type ProxyInfo, ProxyTarget, proxyAdapter } from './adapter.js';

const Params = z.lazy(() =>
  z
    .object({
      ...ProxyTarget,
      plug: z
        .string()
        .min(1)
        .describe(
          'a unix socket of a frontend that keeps connections (tcp-request inspect-delay 24h; tcp-request content accept if WAIT_END): the hold parks one there',
        ),
      enabled: z
        .boolean()
        .default(true)
        .describe('false: change nothing (to rehearse the same runbook without holding: --var hold=false)'),
      maxHold: Duration.default('30s').describe(
        'let held connections in after this even if no flip did (default 30s): keep it above the client connect timeout you can afford',
      ),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

type Snap = { socket: string; maxconn: number; hardMaxconn: number };

export const proxyHold = defineKind<P, Snap, { maxconn: number }>({
  kind: 'proxy.hold',
  summary:
    'hold new connections at the proxy (they wait, not fail) until a proxy.flip lets them in, to the new server',
  params: Params,
  outputs: ['maxconn'],
  iam: () => [],
  describe(p, snap) {
    if (!p.enabled) return ['would not hold new connections (enabled: false)'];
    return [
      `would hold new connections at HAProxy at ${p.socket} (global maxconn ${snap ? `${snap.maxconn} → ` : ''}1, one connection parked on ${p.plug}) for at most ${formatMs(ms(p.maxHold))}`,
      'then: a proxy.flip lets them in (or the undo, or maxHold)',
    ];
  },
  preflightReads: ['socket'],
  async preflight(ctx, p) {
    const proxy = await ctx.adapters.use(proxyAdapter, p.socket);
    const level = await proxy.level();
    if (level !== 'admin')
      throw new StepError(
        'PROXY_NOT_ADMIN',
        `HAProxy at ${p.socket} gives this socket level "${level}": a hold needs \`stats socket … level admin\``,
      );
  },
  async snapshot(ctx, p) {
    const info: ProxyInfo = await (await ctx.adapters.use(proxyAdapter, p.socket)).info();
    return { socket: p.socket, maxconn: info.maxconn, hardMaxconn: info.hardMaxconn };
  },
  async apply(ctx, p, snap) {
    if (!p.enabled) return { maxconn: snap.maxconn };
    await (await ctx.adapters.use(proxyAdapter, p.socket)).hold(p.plug, ms(p.maxHold));
    return { maxconn: snap.maxconn };
  },
  async verify(ctx, p) {
    if (p.enabled && !(await (await ctx.adapters.use(proxyAdapter, p.socket)).holding()))
      throw new StepError(
        'PROXY_NOT_HOLDING',
        `HAProxy at ${p.socket} does not hold new connections (show info: Maxconn is not 1)`,
      );
  },
  restoreHint(p, snap) {
    return [
      `let held connections in: echo "set maxconn global ${snap && snap.maxconn > 1 ? snap.maxconn : (snap?.hardMaxconn ?? '<Hard_maxconn from show info>')}" | socat - UNIX:${p.socket}`,
    ];
  },
  async undo(ctx, p, snap) {
    if (!p.enabled) return;
    // A snapshot taken while an earlier hold held (1) restores the start-up limit instead.
    const to = snap.maxconn > 1 ? snap.maxconn : snap.hardMaxconn;
    if (await (await ctx.adapters.use(proxyAdapter, p.socket)).release(to))
      ctx.log(`HAProxy at ${p.socket}: held connections let in`);
  },
});
