// Issue 16's comparison: the same sandbox cutover done several ways, under the rehearsal's canary
// writers (src/rehearse/load.ts), five alternating rounds each, every run on a sandbox reset to seed.
//   script  bench/baseline/cutover.sh: a careful hand-written bash script (mysql client, 1 s polls)
//   dns     cutover run runbooks/sandbox.yaml --execute --yes
//   proxy   cutover run runbooks/sandbox-proxy.yaml --execute --yes (only when that runbook exists),
//           writers through SANDBOX_PROXY_HOST/PORT; proxy-nohold: the same with --var hold=false
// Per run: write-unavailability = the longest gap between acknowledged writes (any writer; a run
// whose writers never recover counts up to the moment they were stopped), failed write attempts,
// time in maintenance (the maintenance file as the app sees it, polled every 10 ms: the same
// yardstick for the script and the tool), and lost writes = acknowledged rows missing on the final
// primary, read back row by row. Standalone:
//   npx tsx bench/flip-compare.ts [--ports db,aws,dns,app] [--rounds N] [--only script,dns,proxy,proxy-nohold]
//     [--writer-pause MS]   (also BENCH_WRITER_PAUSE_MS for `npm run bench`; see RunOptions)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveHost } from '../src/adapters/resolve.js';
import { CanaryLoad, countLostWrites, createCanaryTable, DEFAULT_TABLE } from '../src/rehearse/load.js';
import type { DatabaseConfig } from '../src/runbook/schema.js';
import { resetSandbox, type SandboxEnv, sandboxDown, sandboxUp } from '../src/sandbox/index.js';
import { readMaintenance } from '../src/sandbox/maintenance.js';

/**
 * Writers pause this long after each acknowledged write (about 100 writes/s each). Flat out, two
 * writers outrun the sandbox replica's single applier on a 2-core machine: every DNS cutover then
 * stops at its replica-lag check, and the script (which has none) waits out the catch-up with
 * writes blocked. A production application is not a write loop; the pause keeps the comparison
 * about the flip.
 */
export const DEFAULT_WRITER_PAUSE_MS = 10;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'cutover.js');
export const PROXY_RUNBOOK = join(ROOT, 'runbooks', 'sandbox-proxy.yaml');

/** Where a contender's writers connect, as the application would for that setup. */
export type WriterTarget = 'dns' | 'proxy';

export interface Contender {
  name: string;
  /** The command that cuts the sandbox over; run from the repo root. */
  argv(env: SandboxEnv, work: string): string[];
  writers: WriterTarget;
}

const runbook =
  (file: string, ...extra: string[]) =>
  (_env: SandboxEnv, work: string) => [
    process.execPath,
    CLI,
    'run',
    file,
    '--execute',
    '--yes',
    '--plain',
    '--runs-dir',
    join(work, 'runs'),
    ...extra,
  ];

export const SCRIPT: Contender = {
  name: 'script',
  argv: (env) => ['bash', join(ROOT, 'bench', 'baseline', 'cutover.sh'), join(env.SANDBOX_DIR, 'env')],
  writers: 'dns',
};
export const DNS: Contender = {
  name: 'dns',
  argv: runbook(join(ROOT, 'runbooks', 'sandbox.yaml')),
  writers: 'dns',
};
export const PROXY: Contender = { name: 'proxy', argv: runbook(PROXY_RUNBOOK), writers: 'proxy' };
/** The same proxy cutover without holding new connections at the proxy (they fail instead). */
export const PROXY_NO_HOLD: Contender = {
  name: 'proxy-nohold',
  argv: runbook(PROXY_RUNBOOK, '--var', 'hold=false'),
  writers: 'proxy',
};

/** The contenders this checkout can run: the proxy flips only where their runbook (and its hold param) exist. */
export function contenders(): Contender[] {
  if (!existsSync(PROXY_RUNBOOK)) return [SCRIPT, DNS];
  const holds = /^\s+hold:\s*true\b/m.test(readFileSync(PROXY_RUNBOOK, 'utf8'));
  return holds ? [SCRIPT, DNS, PROXY, PROXY_NO_HOLD] : [SCRIPT, DNS, PROXY];
}

export interface RunResult {
  contender: string;
  ok: boolean;
  /** Why the run failed (exit code and the command's last output lines). */
  error?: string;
  unavailableMs: number;
  failedAttempts: number;
  maintenanceMs?: number;
  lostWrites: number;
  acknowledged: number;
  wallMs: number;
}

function writerDb(env: SandboxEnv, target: WriterTarget): DatabaseConfig {
  const common = {
    name: 'app',
    user: env.SANDBOX_APP_DB_USER,
    password: env.SANDBOX_APP_DB_PASSWORD,
    database: env.SANDBOX_DB_NAME,
    connectTimeoutMs: 1000,
  };
  // The proxy contender's app talks to the proxy when the sandbox runs one; else to the DNS name.
  if (target === 'proxy' && env.SANDBOX_PROXY_HOST && env.SANDBOX_PROXY_PORT)
    return { ...common, host: env.SANDBOX_PROXY_HOST, port: Number(env.SANDBOX_PROXY_PORT) };
  return {
    ...common,
    host: env.SANDBOX_RECORD_NAME,
    resolvers: [env.SANDBOX_DNS_SERVER],
    port: Number(env.SANDBOX_DB_PORT),
  };
}

function toolDb(env: SandboxEnv, host: string): DatabaseConfig {
  return {
    name: host,
    host,
    port: Number(env.SANDBOX_DB_PORT),
    user: env.SANDBOX_DB_USER,
    password: env.SANDBOX_DB_PASSWORD,
    database: env.SANDBOX_DB_NAME,
    connectTimeoutMs: 1000,
  };
}

/** On → off of the app's maintenance switch, read from the file the app reads on every request. */
function watchMaintenance(file: string): { stop(): number | undefined } {
  let on: number | undefined;
  let off: number | undefined;
  const timer = setInterval(() => {
    const enabled = readMaintenance(file).enabled;
    const now = performance.now();
    if (enabled && on === undefined) on = now;
    if (!enabled && on !== undefined && off === undefined) off = now;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return on !== undefined && off !== undefined ? off - on : undefined;
    },
  };
}

/** The longest stretch without an acknowledged write, up to `end` (ms, performance.now clock). */
export function longestAckGap(ackTimes: number[], start: number, end: number): number {
  const t = [start, ...[...ackTimes].sort((a, b) => a - b), end];
  let worst = 0;
  for (let i = 1; i < t.length; i++) worst = Math.max(worst, t[i]! - t[i - 1]!);
  return worst;
}

function runCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

export interface RunOptions {
  writers?: number;
  /**
   * Pause after each acknowledged write, per writer (ms); default DEFAULT_WRITER_PAUSE_MS. 0 is the rehearsal's load: flat
   * out. On a loaded machine the replica's single applier falls behind such writers (its fsync'd
   * commits are serial) and the DNS runbook then refuses to start (check-lag); a pause keeps the
   * replica current, so the figures measure the flip and not the disk.
   */
  writerPauseMs?: number;
  warmupMs?: number;
  settleMs?: number;
  timeoutMs?: number;
}

/** One cutover by `c` on a sandbox just reset to seed, under canary writers. */
export async function runOnce(
  env: SandboxEnv,
  c: Contender,
  work: string,
  o: RunOptions = {},
): Promise<RunResult> {
  await resetSandbox(env);
  const old = toolDb(env, env.SANDBOX_OLD_DB_HOST);
  const table = DEFAULT_TABLE;
  await createCanaryTable(old, table);
  const db = writerDb(env, c.writers);
  const before = await resolveHost(db.host, db.resolvers);
  const runId = `flip-${c.name}-${Date.now().toString(36)}`;
  // The rehearsal's writers (runbooks/sandbox.yaml: writers: 2), following the record's TTL.
  const load = new CanaryLoad(
    db,
    table,
    runId,
    o.writers ?? 2,
    before.address,
    true,
    o.writerPauseMs ?? DEFAULT_WRITER_PAUSE_MS,
  );
  const maintenance = watchMaintenance(env.SANDBOX_MAINTENANCE_FILE);
  const start = performance.now();
  load.start();
  await new Promise((r) => setTimeout(r, o.warmupMs ?? 500));
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // The process environment wins over the runbook's envFiles: nothing is read from a developer's .sandbox.
    ...env,
    CI: '1',
    NO_COLOR: '1',
    CUTOVER_LOCK_DIR: join(work, 'locks'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const t0 = performance.now();
  const { code, output } = await runCommand(c.argv(env, work), childEnv, o.timeoutMs ?? 180_000);
  const wallMs = performance.now() - t0;
  // As the rehearsal does: let the writers land on the new primary before stopping them.
  await new Promise((r) => setTimeout(r, o.settleMs ?? 1500));
  const end = performance.now();
  const res = await load.stop();
  const maintenanceMs = maintenance.stop();
  const ok = code === 0;
  // Acknowledged rows belong on the final primary: new after a cutover, old if it stopped short.
  const primary = toolDb(env, ok ? env.SANDBOX_NEW_DB_HOST : env.SANDBOX_OLD_DB_HOST);
  const { lost } = await countLostWrites(primary, table, runId, res.acks);
  return {
    contender: c.name,
    ok,
    ...(ok
      ? {}
      : {
          error: `exit ${code}: ${output.trim().split('\n').slice(-6).join('\n')}`,
        }),
    unavailableMs: longestAckGap(
      res.acks.map((a) => a.at),
      start,
      end,
    ),
    failedAttempts: res.failedAttempts,
    ...(maintenanceMs !== undefined ? { maintenanceMs } : {}),
    lostWrites: lost,
    acknowledged: res.acknowledged,
    wallMs,
  };
}

const median = (xs: number[]) => {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface Summary {
  contender: string;
  writers: string;
  runs: RunResult[];
  failed: number;
  unavailableMs: number;
  failedAttempts: number;
  maintenanceMs: number;
  lostWrites: number;
  /** Acknowledged writes missing, summed over every run (the target is about all of them). */
  lostTotal: number;
}

/** `rounds` alternating rounds: each contender once per round, the order reversed every other round. */
export async function benchFlipCompare(
  env: SandboxEnv,
  o: RunOptions & { rounds?: number; only?: Contender[]; log?: (line: string) => void } = {},
): Promise<Summary[]> {
  const list = o.only ?? contenders();
  const rounds = o.rounds ?? 5;
  const work = mkdtempSync(join(tmpdir(), 'cutover-flip-compare-'));
  mkdirSync(join(work, 'locks'));
  const runs = new Map<string, RunResult[]>(list.map((c) => [c.name, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of r % 2 ? [...list].reverse() : list) {
        const x = await runOnce(env, c, work, o);
        runs.get(c.name)!.push(x);
        o.log?.(
          `round ${r + 1} ${c.name.padEnd(6)} ${x.ok ? 'ok    ' : 'FAILED'} unavailable ${Math.round(x.unavailableMs)} ms, failed attempts ${x.failedAttempts}, maintenance ${x.maintenanceMs === undefined ? 'n/a' : `${Math.round(x.maintenanceMs)} ms`}, lost ${x.lostWrites} of ${x.acknowledged}, wall ${Math.round(x.wallMs)} ms${x.error ? `\n${x.error}` : ''}`,
        );
      }
    }
  } finally {
    await resetSandbox(env).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  return list.map((c) => {
    const rs = runs.get(c.name)!;
    const good = rs.filter((x) => x.ok);
    const maint = good.flatMap((x) => (x.maintenanceMs === undefined ? [] : [x.maintenanceMs]));
    const db = writerDb(env, c.writers);
    return {
      contender: c.name,
      writers: `${db.host}:${db.port}`,
      runs: rs,
      failed: rs.length - good.length,
      unavailableMs: median(good.map((x) => x.unavailableMs)),
      failedAttempts: median(good.map((x) => x.failedAttempts)),
      maintenanceMs: median(maint),
      lostWrites: median(rs.map((x) => x.lostWrites)),
      lostTotal: rs.reduce((n, x) => n + x.lostWrites, 0),
    };
  });
}

const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : `${Math.round(x).toLocaleString('en-US')} ms`);

const fmtCount = (x: number) => (Number.isNaN(x) ? 'n/a' : String(Math.round(x)));

/** The contenders side by side: one row each, medians of their runs. */
export function renderCompare(s: Summary[]): string {
  const head = [
    'contender',
    'write-unavailability',
    'failed write attempts',
    'time in maintenance',
    'lost writes',
    'runs',
  ];
  const rows = s.map((x) => [
    `${x.contender} (writers → ${x.writers})`,
    ms(x.unavailableMs),
    fmtCount(x.failedAttempts),
    ms(x.maintenanceMs),
    `${x.lostWrites} (total ${x.lostTotal})`,
    `${x.runs.length - x.failed}/${x.runs.length} ok`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [
    line(head),
    `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`,
    ...rows.map(line),
    '(medians per contender; lost writes: median, and the total over all runs)',
  ].join('\n');
}

/** Issue 16's targets as [measure, value, target, ok] rows (ok undefined: nothing to judge). */
export function compareTargets(s: Summary[]): [string, string, string, boolean | undefined][] {
  const by = (n: string) => s.find((x) => x.contender === n);
  const out: [string, string, string, boolean | undefined][] = [];
  const runs = s[0]?.runs.length ?? 0;
  for (const x of s.filter((x) => x.contender !== 'proxy'))
    out.push([
      `flip compare ${x.contender}: write-unavailability (median of ${runs})`,
      ms(x.unavailableMs),
      '',
      x.failed === 0 ? undefined : false,
    ]);
  const proxy = by('proxy');
  const script = by('script');
  if (proxy) {
    out.push([
      `flip compare proxy: write-unavailability (median of ${runs})`,
      ms(proxy.unavailableMs),
      '≤ 400 ms',
      proxy.unavailableMs <= 400,
    ]);
    if (script) {
      const ratio = script.unavailableMs / proxy.unavailableMs;
      out.push([
        "flip compare: script's write-unavailability ÷ proxy's",
        Number.isFinite(ratio) ? `${ratio.toFixed(1)}×` : 'n/a',
        '≥ 3×',
        ratio >= 3,
      ]);
    }
    const noHold = by('proxy-nohold');
    if (noHold)
      out.push([
        'flip compare: failed write attempts, proxy holding vs not (medians)',
        `${fmtCount(proxy.failedAttempts)} vs ${fmtCount(noHold.failedAttempts)}`,
        'fewer with holding',
        proxy.failedAttempts < noHold.failedAttempts,
      ]);
  } else {
    out.push([
      'flip compare proxy',
      'not run: no runbooks/sandbox-proxy.yaml',
      '≤ 400 ms, ≥ 3× shorter than script',
      undefined,
    ]);
  }
  for (const x of s)
    out.push([
      `flip compare ${x.contender}: acknowledged writes lost (all runs)`,
      String(x.lostTotal),
      '0',
      x.lostTotal === 0,
    ]);
  for (const x of s)
    if (x.failed)
      out.push([`flip compare ${x.contender}: runs that failed`, `${x.failed}/${x.runs.length}`, '0', false]);
  return out;
}

interface Args {
  ports?: number[];
  rounds?: number;
  only?: string[];
  pause?: number;
}

function args(argv: string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--ports' && v) out.ports = v.split(',').map(Number);
    else if (k === '--rounds' && v) out.rounds = Number(v);
    else if (k === '--only' && v) out.only = v.split(',');
    else if (k === '--writer-pause' && v) out.pause = Number(v);
    else {
      console.error(
        `flip-compare: unknown argument ${k}\nusage: npx tsx bench/flip-compare.ts [--ports db,aws,dns,app] [--rounds N] [--only script,dns,proxy] [--writer-pause MS]`,
      );
      process.exit(2);
    }
    i++;
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const a = args(process.argv.slice(2));
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) {
    console.error('flip-compare: dist/cli.js missing: run `npm run build` first');
    process.exit(2);
  }
  const [db, aws, dns, app] = a.ports ?? [63306, 64566, 60053, 58180];
  const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-compare-'));
  const env = await sandboxUp({ dir, ports: { db: db!, aws: aws!, dns: dns!, app: app! } });
  try {
    const only = a.only ? contenders().filter((c) => a.only!.includes(c.name)) : contenders();
    const s = await benchFlipCompare(env, {
      only,
      ...(a.rounds ? { rounds: a.rounds } : {}),
      writerPauseMs: a.pause ?? Number(process.env.BENCH_WRITER_PAUSE_MS ?? DEFAULT_WRITER_PAUSE_MS),
      log: (l) => console.error(l),
    });
    console.log(
      `\nflip compare — node ${process.version}, writers: 2, pause ${a.pause ?? Number(process.env.BENCH_WRITER_PAUSE_MS ?? DEFAULT_WRITER_PAUSE_MS)} ms after each write, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}\n`,
    );
    console.log(renderCompare(s));
    console.log('');
    for (const [what, value, target, ok] of compareTargets(s))
      console.log(
        `${ok === undefined ? '      ' : ok ? 'ok    ' : 'MISSED'} ${what}: ${value}${target ? ` (target ${target})` : ''}`,
      );
    process.exitCode = compareTargets(s).some(([, , , ok]) => ok === false) ? 1 : 0;
  } finally {
    await sandboxDown({ dir }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
