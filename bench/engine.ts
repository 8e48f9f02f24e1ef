// The engine's own cost: per-step overhead (wall time of a run minus the time spent inside step
// actions) for a 100-step runbook of no-op steps, with the real fsync'd journal in a temp dir; and
// the cold start of `cutover validate` on the example runbook against a bare `node -e 0`.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../src/engine/executor.js';
import { Journal } from '../src/journal/journal.js';
import { Redactor } from '../src/journal/redact.js';
import { loadRunbookText } from '../src/runbook/load.js';
import { prepareRunbook } from '../src/runbook/validate.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

function noOpRunbook(steps: number): string {
  const lines = ['version: 1', 'name: bench-noop', 'steps:'];
  for (let i = 1; i <= steps; i++) {
    // Alternate the two no-op kinds: a zero wait and a trivially true assertion.
    lines.push(
      i % 2
        ? `  - { id: s${i}, kind: wait, with: { duration: 0s } }`
        : `  - { id: s${i}, kind: assert, with: { that: "1 == 1" } }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One run of the engine over `steps` no-op steps; returns wall and in-action milliseconds. */
async function engineRun(steps: number): Promise<{ wallMs: number; actionMs: number; records: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-'));
  try {
    const loaded = loadRunbookText(join(dir, 'runbook.yaml'), noOpRunbook(steps));
    const prepared = prepareRunbook(loaded, { envStrict: true });
    const redactor = new Redactor(prepared.secrets);
    const t0 = performance.now();
    const journal = Journal.open(dir, loaded.sha256, redactor);
    journal.append('run-start', {
      runId: 'bench',
      mode: 'run',
      runbook: { file: loaded.file, name: prepared.runbook.name, sha256: loaded.sha256 },
      vars: {},
      steps: prepared.runbook.steps.map((s) => ({ id: s.id, kind: s.kind })),
    });
    const engine = new Engine({
      prepared,
      runId: 'bench',
      runDir: dir,
      mode: 'run',
      journal,
      redactor,
      emit: () => {},
    });
    const result = await engine.execute();
    journal.close();
    const wallMs = performance.now() - t0;
    if (result.status !== 'succeeded') throw new Error(`bench run ${result.status}: ${result.message}`);
    const actionMs = result.timings.reduce((a, t) => a + t.actionMs, 0);
    return { wallMs, actionMs, records: steps * 3 + 2 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function exampleRunbook(): string {
  for (const p of ['runbooks/sandbox.yaml', 'test/fixtures/runbooks/valid/files.yaml'])
    if (existsSync(join(ROOT, p))) return p;
  throw new Error('no example runbook');
}

/** `cutover validate`'s cold start as a multiple of a bare `node -e 0` (the target is 2×). */
export const VALIDATE_RATIO_TARGET = 2;

function timedSpawn(args: string[]): { ms: number; status: number | null; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  return { ms: performance.now() - t0, status: r.status, stderr: r.stderr };
}

/**
 * Interleaved runs of `node -e 0` and `node bin/cutover.js validate FILE`, fresh processes each:
 * the ratio of the medians holds on a noisy machine where either figure alone does not.
 */
export function validateColdStart(runs = 21): {
  file: string;
  ratio: number;
  validateMs: number;
  nodeMs: number;
  met: boolean;
} {
  const cli = join(ROOT, 'bin', 'cutover.js');
  if (!existsSync(join(ROOT, 'dist', 'bundle', 'cli.js')))
    throw new Error('dist/bundle/cli.js missing: run `npm run build` first');
  const file = exampleRunbook();
  const bare: number[] = [];
  const validate: number[] = [];
  timedSpawn(['-e', '0']); // the first spawn pays for the page cache, not for node
  for (let i = 0; i < runs; i++) {
    bare.push(timedSpawn(['-e', '0']).ms);
    const r = timedSpawn([cli, 'validate', file]);
    if (r.status !== 0) throw new Error(`validate ${file} exited ${r.status}: ${r.stderr}`);
    validate.push(r.ms);
  }
  const nodeMs = median(bare);
  const validateMs = median(validate);
  const ratio = Math.round((validateMs / nodeMs) * 100) / 100;
  return {
    file,
    ratio,
    validateMs: Math.round(validateMs),
    nodeMs: Math.round(nodeMs),
    met: ratio <= VALIDATE_RATIO_TARGET,
  };
}

export async function benchEngine(): Promise<{
  steps: number;
  overheadPerStepMs: number;
  validateColdStart: ReturnType<typeof validateColdStart>;
}> {
  const steps = 100;
  await engineRun(10); // warm up the module graph and JIT: the figure is the engine, not the loader
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await engineRun(steps);
    runs.push((r.wallMs - r.actionMs) / steps);
  }
  const overheadPerStepMs = round(median(runs));
  return { steps, overheadPerStepMs, validateColdStart: validateColdStart() };
}

/** What one fdatasync'd journal-sized append costs on this disk right now (context for the figure). */
export function fsyncProbeMs(n = 200): number {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-fsync-'));
  try {
    const fd = openSync(join(dir, 'probe'), 'a');
    const line = `${'x'.repeat(400)}\n`;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      writeSync(fd, line);
      fdatasyncSync(fd);
    }
    const ms = (performance.now() - t0) / n;
    closeSync(fd);
    return round(ms);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node --import tsx bench/engine.ts` prints the figures on its own.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await benchEngine();
  console.log(
    `disk: one fdatasync'd append takes ${fsyncProbeMs()} ms here now; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `engine: ${r.overheadPerStepMs} ms overhead per step over ${r.steps} no-op steps (3 fsync'd journal records each; target < 2 ms)`,
  );
  const v = r.validateColdStart;
  console.log(
    `validate cold start (${v.file}): ${v.ratio}× a bare \`node -e 0\` (medians ${v.validateMs} ms / ${v.nodeMs} ms, interleaved; target ≤ ${VALIDATE_RATIO_TARGET}×) ${v.met ? 'MET' : 'MISSED'}`,
  );
}
