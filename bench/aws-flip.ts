// The Route 53 flip step's own overhead against the sandbox endpoint: its wall time (snapshot, apply,
// verify) minus the time it spends sleeping on purpose — INSYNC polling intervals, DNS re-checks and
// the old-TTL countdown. What is left is SDK calls, DNS queries and the kind's own work. Each flip is
// undone afterwards so the sandbox ends as it started.
import { routeFlip } from '../src/steps/aws/route53-flip.js';
import { createHarness, runStep, undoStep } from '../test/integration/aws/harness.js';

export async function benchFlip(
  env: Record<string, string>,
): Promise<{ runs: number; overheadMs: number[]; medianOverheadMs: number; medianTotalMs: number }> {
  const need = [
    'CUTOVER_AWS_ENDPOINT',
    'SANDBOX_ZONE_ID',
    'SANDBOX_RECORD_NAME',
    'SANDBOX_NEW_DB_HOST',
    'SANDBOX_DNS_PORT',
  ];
  const missing = need.filter((k) => !env[k]);
  if (missing.length)
    throw new Error(`benchFlip: ${missing.join(', ')} not set (start the sandbox: cutover sandbox up)`);
  const runs = Number(env.BENCH_FLIP_RUNS ?? 7);
  const params = {
    zoneId: env.SANDBOX_ZONE_ID!,
    name: env.SANDBOX_RECORD_NAME!,
    type: 'A',
    value: env.SANDBOX_NEW_DB_HOST!,
    resolvers: [`127.0.0.1:${env.SANDBOX_DNS_PORT}`],
    // The kind's defaults (INSYNC every 2s, DNS every 1s) unless asked: every GetChange round trip
    // counts as overhead, so a tighter interval trades wall time for overhead.
    ...(env.BENCH_FLIP_SYNC_INTERVAL ? { syncInterval: env.BENCH_FLIP_SYNC_INTERVAL } : {}),
    ...(env.BENCH_FLIP_RESOLVE_INTERVAL ? { resolveInterval: env.BENCH_FLIP_RESOLVE_INTERVAL } : {}),
  };
  const overheadMs: number[] = [];
  const totalMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const h = createHarness({ mode: 'live', env: { ...process.env, ...env } });
    try {
      const t0 = performance.now();
      const step = await runStep(h, routeFlip, params, 'bench-flip');
      const wall = performance.now() - t0;
      overheadMs.push(wall - h.sleptMs);
      totalMs.push(wall);
      await undoStep(h, routeFlip, step);
    } finally {
      await h.close();
    }
  }
  return {
    runs,
    overheadMs: overheadMs.map(round),
    medianOverheadMs: round(median(overheadMs)),
    medianTotalMs: round(median(totalMs)),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
