// `npm run bench`: the figures the issues set targets for, measured on this machine, as one table.
// Starts its own sandbox on bench ports (a developer's sandbox and the tests' are left alone).
import { spawnSync } from 'node:child_process';
// Node 20 is supported; the SDK's notice about its future floor would clutter the table.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearseRunbook } from '../src/rehearse/rehearse.js';
import { resetSandbox, sandboxDown, sandboxUp } from '../src/sandbox/index.js';
import { benchFlip } from './aws-flip.js';
import { benchEngine, VALIDATE_RATIO_TARGET } from './engine.js';
import { benchFlipCompare, compareTargets, DEFAULT_WRITER_PAUSE_MS, renderCompare } from './flip-compare.js';
import { benchStopReplication } from './mysql-stop.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (x: number) => `${x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x)} ms`;
const rows: [string, string, string, string][] = [];
const row = (what: string, value: string, target: string, ok: boolean | undefined) =>
  rows.push([what, value, target, ok === undefined ? '' : ok ? 'ok' : 'MISSED']);
const only = process.argv.slice(2);
let compareTable: string | undefined;
const want = (name: string) => only.length === 0 || only.includes(name);

if (want('engine')) {
  const e = await benchEngine();
  row(
    `engine overhead per step (${e.steps} no-op steps, fsync'd journal)`,
    ms(e.overheadPerStepMs),
    '< 2 ms',
    e.overheadPerStepMs < 2,
  );
  const v = e.validateColdStart;
  row(
    `\`cutover validate\` cold start ÷ bare \`node -e 0\` (medians ${v.validateMs}/${v.nodeMs} ms, interleaved)`,
    `${v.ratio}×`,
    `≤ ${VALIDATE_RATIO_TARGET}×`,
    v.met,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-'));
// Route 53's INSYNC delay stays at the sandbox default (1 s), as in `npm run demo`.
const env = await sandboxUp({ dir, ports: { db: 63306, aws: 64566, dns: 60053, app: 58180 } });
try {
  let floorMs: number | undefined;
  if (want('mysql') || want('rehearsal')) {
    const s = await benchStopReplication(env);
    floorMs = s.floorMs;
    row(
      'mysql.replication.stop write-blocked window (median of 5, under load)',
      ms(s.medianMs),
      '< 50 ms',
      s.medianMs < 50,
    );
    row('bare SQL freeze → GTID wait → stop → unfreeze (floor)', ms(s.floorMs), '', undefined);
    row('acknowledged writes lost during the stop benchmark', String(s.lost), '0', s.lost === 0);
    await resetSandbox(env);
  }
  if (want('flip')) {
    const f = await benchFlip(env);
    row(
      `aws.route53.flip own overhead (median of ${f.runs}; waits excluded)`,
      ms(f.medianOverheadMs),
      '',
      undefined,
    );
    row('aws.route53.flip total incl. INSYNC and TTL waits', ms(f.medianTotalMs), '', undefined);
    await resetSandbox(env);
  }
  if (want('compare')) {
    // Issue 16: the careful script, the DNS flip and (where its runbook exists) the proxy flip, under
    // the same writers. BENCH_WRITER_PAUSE_MS paces them on a machine too loaded for the replica.
    const s = await benchFlipCompare(env, {
      writerPauseMs: Number(process.env.BENCH_WRITER_PAUSE_MS ?? DEFAULT_WRITER_PAUSE_MS),
    });
    compareTable = renderCompare(s);
    for (const r of compareTargets(s)) row(...r);
  }
  if (want('rehearsal')) {
    // The runbook reads the sandbox from the environment (it wins over .sandbox/env); put it back after.
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    const runsDir = join(dir, 'runs');
    const unavailable: number[] = [];
    const maintenance: number[] = [];
    let lost = 0;
    for (let i = 0; i < 5; i++) {
      const r = await rehearseRunbook('runbooks/sandbox.yaml', { runsDir, render: 'silent', yes: true });
      if (r.status !== 'succeeded') {
        const { renderStatus, statusOf } = await import('../src/report/status.js');
        throw new Error(`rehearsal ${i + 1} ${r.status}:\n${renderStatus(statusOf(r.runDir))}`);
      }
      if (r.writeUnavailableMs !== undefined) unavailable.push(r.writeUnavailableMs);
      if (r.maintenanceMs !== undefined) maintenance.push(r.maintenanceMs);
      lost += r.lostWrites;
      await resetSandbox(env);
    }
    const ttlMs = 1000;
    const u = median(unavailable);
    row(
      'sandbox rehearsal write-unavailability, DNS TTL 1 s (median of 5)',
      ms(u),
      '< TTL + 1 s = 2000 ms',
      u < ttlMs + 1000,
    );
    if (floorMs !== undefined) row('floor: bare SQL sequence + TTL', ms(floorMs + ttlMs), '', undefined);
    const m = median(maintenance);
    row('time in maintenance, whole runbook (median of 5)', ms(m), '< 10 s', m < 10_000);
    row('acknowledged writes lost across 5 rehearsals', String(lost), '0', lost === 0);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
} finally {
  await sandboxDown({ dir }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}

if (want('managed')) {
  // The production template itself on the managed-platform sandbox, GTID on and off, next to the
  // self-managed rehearsal above: same figures, the platform's constraints enforced by the server.
  const mdir = mkdtempSync(join(tmpdir(), 'cutover-bench-rds-'));
  const menv = await sandboxUp({
    dir: mdir,
    platform: 'rds',
    ports: { db: 63316, aws: 64576, dns: 60063, app: 58190 },
  });
  const saved = Object.fromEntries(Object.keys(menv).map((k) => [k, process.env[k]]));
  Object.assign(process.env, menv);
  try {
    const { readVarFile } = await import('../src/runbook/var-file.js');
    const vars = readVarFile(join(mdir, 'rds-to-aurora.vars'));
    for (const gtid of ['on', 'off'] as const) {
      const unavailable: number[] = [];
      const maintenance: number[] = [];
      let lost = 0;
      for (let i = 0; i < 3; i++) {
        await resetSandbox(menv, { gtid });
        const r = await rehearseRunbook('runbooks/rds-to-aurora.yaml', {
          runsDir: join(mdir, 'runs'),
          render: 'silent',
          yes: true,
          vars,
        });
        if (r.status !== 'succeeded') {
          const { renderStatus, statusOf } = await import('../src/report/status.js');
          throw new Error(
            `managed rehearsal (GTID ${gtid}) ${r.status}:\n${renderStatus(statusOf(r.runDir))}`,
          );
        }
        if (r.writeUnavailableMs !== undefined) unavailable.push(r.writeUnavailableMs);
        if (r.maintenanceMs !== undefined) maintenance.push(r.maintenanceMs);
        lost += r.lostWrites;
      }
      row(
        `managed platform (rds-to-aurora.yaml, GTID ${gtid}) write-unavailability (median of 3)`,
        ms(median(unavailable)),
        '',
        undefined,
      );
      row(
        `managed platform (GTID ${gtid}) time in maintenance (median of 3)`,
        ms(median(maintenance)),
        '',
        undefined,
      );
      row(`managed platform (GTID ${gtid}) acknowledged writes lost`, String(lost), '0', lost === 0);
    }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await sandboxDown({ dir: mdir }).catch(() => undefined);
    rmSync(mdir, { recursive: true, force: true });
  }
}

if (want('demo')) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['scripts/demo.js'], { stdio: 'ignore', timeout: 300_000 });
  const wall = performance.now() - t0;
  row(
    '`npm run demo` wall time (sandbox up → rehearsal → report → down)',
    r.status === 0 ? `${(wall / 1000).toFixed(1)} s` : `failed (exit ${r.status})`,
    '',
    r.status === 0 ? undefined : false,
  );
}

const widths = [0, 1, 2, 3].map((i) =>
  Math.max(...[['measure', 'value', 'target', ''], ...rows].map((r) => r[i]!.length)),
);
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\ncutover benchmarks — node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`);
if (compareTable) console.log(`flip compare (median per contender):\n${compareTable}\n`);
console.log(line(['measure', 'value', 'target', '']));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
process.exitCode = rows.some((r) => r[3] === 'MISSED') ? 1 : 0;
