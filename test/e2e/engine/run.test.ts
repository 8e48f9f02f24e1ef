// The run as an operator drives it: plan, --execute, gates, retries, timeouts, waits, Ctrl-C,
// the lock, --var, schema and status.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, runCliUntil, startCli, TEST_LOCK_DIR, waitFor } from '../../helpers/cli.js';
import { type StepSpec, sh, writeRunbook } from '../../helpers/runbooks.js';
import {
  events,
  onlyRunDir,
  readJournalLines,
  runDirs,
  snapshotDir,
  type Workspace,
  workspace,
} from '../../helpers/workspace.js';

let ws: Workspace | undefined;
afterEach(() => {
  ws?.cleanup();
  ws = undefined;
});

const run = (rb: string, ...extra: string[]) =>
  runCli(['run', rb, '--execute', '--runs-dir', ws!.runsDir, ...extra], { cwd: ws!.dir });

/** Steps that each change a file, with undo commands. */
function fileSteps(n: number, extra: (i: number) => Record<string, unknown> = () => ({})): StepSpec[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return sh(`s${i}`, `echo s${i} >> \${params.dir}/out.txt`, {
      undo: `sed -i '/^s${i}$/d' \${params.dir}/out.txt`,
      check: `grep -qx s${i} \${params.dir}/out.txt`,
      ...extra(i),
    });
  });
}

function fresh(name: string, steps: StepSpec[], params: Record<string, unknown> = {}) {
  ws = workspace();
  ws.write('files/out.txt', 'start\n');
  return writeRunbook(ws.dir, { name, params: { dir: ws.filesDir, ...params }, steps });
}

describe('plan', () => {
  it('performs zero writes: files untouched, no adapter writes, the intercepted ones counted', async () => {
    const rb = fresh('plan-zero-writes', [
      ...fileSteps(3),
      sh('wipe', 'rm -rf ${params.dir}', { rollback: 'none' }),
      { id: 'settle', kind: 'wait', with: { duration: '10ms' } },
    ]);
    const before = snapshotDir(ws!.filesDir);
    const r = await runCli(['plan', rb, '--runs-dir', ws!.runsDir], { cwd: ws!.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(snapshotDir(ws!.filesDir)).toEqual(before);
    expect(r.stdout).toContain(`would run echo s1 >> ${ws!.filesDir}/out.txt`);
    expect(r.stdout).toContain(`would run rm -rf ${ws!.filesDir}`);
    const journal = readJournalLines(onlyRunDir(ws!.runsDir));
    const end = journal.at(-1)!;
    expect(end).toMatchObject({ type: 'run-end', status: 'planned', exitCode: 0 });
    const stats = end.adapterStats as { writes: Record<string, number>; recorded: Record<string, number> };
    expect(stats.writes).toEqual({});
    expect(stats.recorded).toEqual({ 'shell.run': 4 });
    // A plan is not a run: nothing to resume or roll back.
    const again = await runCli(['resume', onlyRunDir(ws!.runsDir)], { cwd: ws!.dir });
    expect(again.code).toBe(2);
  });
});

describe('run without --execute', () => {
  it('exits 2, points at plan and changes nothing', async () => {
    const rb = fresh('no-execute', fileSteps(2));
    const before = snapshotDir(ws!.filesDir);
    const r = await runCli(['run', rb, '--runs-dir', ws!.runsDir], { cwd: ws!.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to run without --execute.*cutover plan/);
    expect(snapshotDir(ws!.filesDir)).toEqual(before);
    expect(runDirs(ws!.runsDir)).toEqual([]);
  });
});

describe('approval gates', () => {
  it('without a terminal or --yes, a gate on the first step stops before it: exit 2, nothing changed', async () => {
    const rb = fresh(
      'gate-first',
      fileSteps(2, (i) => (i === 1 ? { approval: true } : {})),
    );
    const before = snapshotDir(ws!.filesDir);
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stdout).toMatch(/needs approval and there is no terminal/);
    expect(snapshotDir(ws!.filesDir)).toEqual(before);
    const runDir = onlyRunDir(ws!.runsDir);
    expect(events(readJournalLines(runDir), ['step-start'])).toEqual([]);

    const resumed = await runCli(['resume', runDir, '--yes'], { cwd: ws!.dir });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\ns2\n');
  });

  it('a gate after changes stops there (exit 3), changes nothing more; resume --yes continues', async () => {
    const rb = fresh(
      'gate-later',
      fileSteps(3, (i) => (i === 2 ? { approval: true } : {})),
    );
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\n');
    const runDir = onlyRunDir(ws!.runsDir);
    const journal = readJournalLines(runDir);
    expect(events(journal, ['step-start'])).toEqual(['step-start s1']);
    expect(journal.at(-1)).toMatchObject({ type: 'run-end', status: 'paused', exitCode: 3 });

    const status = JSON.parse((await runCli(['status', runDir, '--json'])).stdout) as {
      status: string;
      next: string;
    };
    expect(status.status).toBe('paused');
    expect(status.next).toContain(`cutover resume ${runDir}`);

    // Resuming without --yes still has no terminal to ask on: it stops at the same gate.
    const again = await runCli(['resume', runDir], { cwd: ws!.dir });
    expect(again.code).toBe(3);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\n');

    const resumed = await runCli(['resume', runDir, '--yes'], { cwd: ws!.dir });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\ns2\ns3\n');
    expect(
      readJournalLines(runDir)
        .filter((l) => l.type === 'gate')
        .map((l) => l.decision),
    ).toEqual(['needs-approval', 'needs-approval', 'approved']);
  });

  it('--yes passes the gates', async () => {
    const rb = fresh(
      'gate-yes',
      fileSteps(2, () => ({ approval: true })),
    );
    const r = await run(rb, '--yes');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\ns2\n');
  });

  it('resume asks for a secret var again, in a file, instead of using the redacted value', async () => {
    const steps = fileSteps(1);
    steps.push(
      sh('use-token', 'echo ${params.token} > ${params.dir}/token.txt', {
        undo: 'rm -f ${params.dir}/token.txt',
        approval: true,
      }),
    );
    const rb = fresh('gate-secret-var', steps, { token: { secret: true } });
    const secrets = join(ws!.dir, 'secret.vars');
    writeFileSync(secrets, 'token=hunter2-secret\n', { mode: 0o600 });
    const r = await run(rb, '--var-file', secrets);
    expect(r.code).toBe(3);
    const runDir = onlyRunDir(ws!.runsDir);
    const missing = await runCli(['resume', runDir, '--yes'], { cwd: ws!.dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /started with secret parameter token, .*--var-file FILE, mode 0600, with token=\.\.\./,
    );
    // Never on argv, not even to resume.
    const onArgv = await runCli(['resume', runDir, '--yes', '--var', 'token=hunter2-secret'], {
      cwd: ws!.dir,
    });
    expect(onArgv.code).toBe(2);
    expect(onArgv.stderr).toMatch(/secret parameter "token" given with --var: .*--var-file FILE/);
    expect(existsSync(join(ws!.filesDir, 'token.txt'))).toBe(false);
    // rollback rebuilds the run the same way: it asks for the file, and refuses argv.
    const back = await runCli(['rollback', runDir, '--yes'], { cwd: ws!.dir });
    expect(back.code).toBe(2);
    expect(back.stderr).toMatch(/--var-file FILE, mode 0600, with token=\.\.\./);
    const backArgv = await runCli(['rollback', runDir, '--yes', '--var', 'token=hunter2-secret'], {
      cwd: ws!.dir,
    });
    expect(backArgv.code).toBe(2);
    expect(backArgv.stderr).toMatch(/secret parameter "token" given with --var/);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\n');
    const resumed = await runCli(['resume', runDir, '--yes', '--var-file', secrets], { cwd: ws!.dir });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(ws!.read('files/token.txt')).toBe('hunter2-secret\n');
  });
});

describe('retries with backoff', () => {
  // Fails on its first two attempts, succeeds on the third.
  const flaky = (id: string, retries: number): StepSpec =>
    sh(
      id,
      'n=$(cat ${params.dir}/attempts 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${params.dir}/attempts; test $n -ge 3 && echo flaky >> ${params.dir}/out.txt',
      {
        undo: "sed -i '/^flaky$/d' ${params.dir}/out.txt; rm -f ${params.dir}/attempts",
        retries,
        retryDelay: '100ms',
      },
    );

  it('retries: 2 → done on the third attempt, with doubling delays', async () => {
    const rb = fresh('retries-ok', [...fileSteps(1), flaky('flaky', 2)]);
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(ws!.read('files/attempts')).toBe('3\n');
    const retries = readJournalLines(onlyRunDir(ws!.runsDir)).filter((l) => l.type === 'step-retry');
    expect(retries.map((l) => [l.attempt, l.delayMs])).toEqual([
      [1, 100],
      [2, 200],
    ]);
    expect(r.stdout).toMatch(/\[flaky\] retrying/);
  });

  it('retries: 1 → fails after two attempts and rolls back', async () => {
    const rb = fresh('retries-fail', [...fileSteps(1), flaky('flaky', 1)]);
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(ws!.read('files/out.txt')).toBe('start\n');
    const journal = readJournalLines(onlyRunDir(ws!.runsDir));
    expect(events(journal, ['step-retry', 'step-failed', 'undo-done'])).toEqual([
      'step-retry flaky',
      'step-failed flaky',
      'undo-done s1',
    ]);
  });
});

describe('per-step timeout', () => {
  it('a sleep 30 with timeout 1s fails fast and rolls back', async () => {
    const rb = fresh('timeout', [
      ...fileSteps(1),
      sh('slow', 'sleep 30', { timeout: '1s', rollback: 'none' }),
    ]);
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.durationMs).toBeLessThan(10_000);
    expect(r.stdout).toMatch(/did not finish within 1\.0s/);
    expect(ws!.read('files/out.txt')).toBe('start\n');
    const failed = readJournalLines(onlyRunDir(ws!.runsDir)).find((l) => l.type === 'step-failed')!;
    expect(failed.error).toMatchObject({ code: 'STEP_TIMEOUT' });
  });
});

describe('wait-until checks', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  /** 200 once `ready` exists in the workspace, 503 before. */
  async function readiness(): Promise<string> {
    const dir = ws!.dir;
    server = createServer((_req, res) => {
      const ok = existsSync(join(dir, 'ready'));
      res.writeHead(ok ? 200 : 503).end(ok ? 'ready' : 'not yet');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`;
  }

  const gated = (url: string, timeout: string): StepSpec =>
    sh('after-ready', 'echo gated >> ${params.dir}/out.txt', {
      undo: "sed -i '/^gated$/d' ${params.dir}/out.txt",
      before: [
        {
          kind: 'http.check',
          name: 'ready',
          with: { url, bodyContains: 'ready' },
          'wait-until': { timeout, interval: '100ms' },
        },
      ],
    });

  it('a before check with wait-until passes once the file appears', async () => {
    fresh('wait-until', []);
    const url = await readiness();
    const rb = writeRunbook(ws!.dir, {
      name: 'wait-until',
      params: { dir: ws!.filesDir },
      steps: [...fileSteps(1), gated(url, '20s')],
    });
    const cli = startCli(['run', rb, '--execute', '--runs-dir', ws!.runsDir], { cwd: ws!.dir });
    await waitFor(() => /\[after-ready\] … before check ready/.test(cli.stdout()), 'the wait to start');
    expect(ws!.read('files/out.txt')).toBe('start\ns1\n');
    writeFileSync(ws!.path('ready'), '');
    const r = await cli.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\ngated\n');
    const check = readJournalLines(onlyRunDir(ws!.runsDir)).find((l) => l.type === 'check')!;
    expect(check).toMatchObject({ stepId: 'after-ready', phase: 'before', check: 'ready', ok: true });
  });

  it('gives up at its timeout and rolls back', async () => {
    fresh('wait-until-timeout', []);
    const url = await readiness();
    const rb = writeRunbook(ws!.dir, {
      name: 'wait-until-timeout',
      params: { dir: ws!.filesDir },
      steps: [...fileSteps(1), gated(url, '600ms')],
    });
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/before check ready: not reached within 600ms \(last: .*status 503/);
    expect(ws!.read('files/out.txt')).toBe('start\n');
  });
});

describe('SIGINT', () => {
  it('during a step of a non-interactive run: the step is stopped and everything rolled back (exit 1)', async () => {
    const rb = fresh('sigint', [
      ...fileSteps(2),
      sh('slow', 'touch ${params.dir}/../marker && sleep 20', { undo: 'rm -f ${params.dir}/../marker' }),
      ...fileSteps(1).map((s) => ({ ...s, id: 'never' })),
    ]);
    const r = await runCliUntil(['run', rb, '--execute', '--runs-dir', ws!.runsDir], {
      cwd: ws!.dir,
      markerFile: ws!.path('marker'),
      signal: 'SIGINT',
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.durationMs).toBeLessThan(15_000);
    expect(r.stdout).toMatch(/SIGINT: stopping the current step/);
    expect(ws!.read('files/out.txt')).toBe('start\n');
    const journal = readJournalLines(onlyRunDir(ws!.runsDir));
    expect(events(journal, ['step-failed', 'undo-done'])).toEqual([
      'step-failed slow',
      'undo-done s2',
      'undo-done s1',
    ]);
    expect(journal.find((l) => l.type === 'step-failed')!.error).toMatchObject({ code: 'ABORTED' });
    expect(journal.at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back', exitCode: 1 });
  });
});

describe('the lock', () => {
  // A runbook that names no target is locked by its name (locks live outside --runs-dir).
  const lockName = (name: string) => `runbook-${name}.lock`;

  it('a second concurrent run of the same runbook exits 4 naming the holder', async () => {
    const rb = fresh('locked', [
      sh('hold', 'touch ${params.dir}/../marker; while [ -f ${params.dir}/../hold ]; do sleep 0.05; done'),
    ]);
    ws!.write('hold', '');
    const first = startCli(['run', rb, '--execute', '--runs-dir', ws!.runsDir], { cwd: ws!.dir });
    await waitFor(() => existsSync(ws!.path('marker')), 'the first run to hold its step');
    const second = await run(rb);
    expect(second.code, second.stdout + second.stderr).toBe(4);
    expect(second.stderr).toContain(`another run holds the lock for runbook-locked`);
    expect(second.stderr).toContain(`(pid ${first.child.pid} on ${hostname()})`);
    expect(second.stderr).toContain(onlyRunDir(ws!.runsDir));
    rmSync(ws!.path('hold'));
    const r = await first.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Released: the next run goes ahead.
    expect(readdirSync(TEST_LOCK_DIR).filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  it('a stale lock file of a dead process is taken over', async () => {
    const rb = fresh('stale-lock', fileSteps(1));
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    mkdirSync(TEST_LOCK_DIR, { recursive: true });
    writeFileSync(
      join(TEST_LOCK_DIR, lockName('stale-lock')),
      JSON.stringify({
        pid: dead,
        host: hostname(),
        by: 'someone@elsewhere',
        runDir: '/gone',
        since: '2020-01-01T00:00:00Z',
      }),
    );
    const r = await run(rb);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(ws!.read('files/out.txt')).toBe('start\ns1\n');
  });
});

describe('--var', () => {
  it('overrides params, keeping a numeric param a number', async () => {
    const rb = fresh(
      'vars',
      [
        sh('write', 'echo ${params.greeting} > ${params.dir}/greeting.txt', {
          undo: 'rm -f ${params.dir}/greeting.txt',
        }),
        { id: 'ttl', kind: 'assert', with: { that: '${params.ttl} == 7 && ${params.ttl} + 1 == 8' } },
      ],
      { greeting: 'hello', ttl: 5 },
    );
    const r = await run(rb, '--var', 'greeting=hello; rm -rf /', '--var', 'ttl=7');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The override arrived as one shell word: echoed, not run.
    expect(ws!.read('files/greeting.txt')).toBe('hello; rm -rf /\n');
    const defaults = await run(rb);
    expect(defaults.code).toBe(1); // ttl is 5 by default: the assert fails
  });

  it('--var for a parameter the runbook does not have is bad input', async () => {
    const rb = fresh('vars-unknown', fileSteps(1));
    const r = await run(rb, '--var', 'nope=1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--var nope: the runbook has no parameter "nope"/);
    expect(ws!.read('files/out.txt')).toBe('start\n');
  });
});

describe('cutover schema', () => {
  it('prints valid JSON Schema with the kinds enumerated', async () => {
    const r = await runCli(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as Record<string, any>;
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(schema.required).toEqual(expect.arrayContaining(['version', 'name', 'steps']));
    const step = schema.properties.steps.items;
    expect(step.properties.kind.enum).toEqual(
      expect.arrayContaining(['shell.run', 'http.check', 'wait', 'assert']),
    );
    // One `with` schema per kind, in $defs (steps, checks and rollbacks share them).
    const shellRun = step.allOf.find((b: any) => b.if.properties.kind.const === 'shell.run');
    expect(shellRun.then.properties.with).toEqual({ $ref: '#/$defs/with-shell.run' });
    const params = schema.$defs['with-shell.run'];
    expect(params.properties.command).toBeDefined();
    expect(params.required).toEqual(['command']);
  });
});

describe('cutover status --json', () => {
  it('has the run, its steps, the journal check and what to do next', async () => {
    const rb = fresh('status', [...fileSteps(2), sh('boom', 'exit 7', { rollback: 'none' })]);
    const r = await run(rb);
    expect(r.code).toBe(1);
    const runDir = onlyRunDir(ws!.runsDir);
    const s = await runCli(['status', runDir, '--json']);
    expect(s.code).toBe(0);
    const v = JSON.parse(s.stdout);
    expect(v).toMatchObject({
      runDir,
      runId: expect.stringMatching(/-status-/),
      runbook: expect.stringContaining('status ('),
      mode: 'run',
      by: expect.stringContaining('@'),
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      status: 'rolled-back',
      exitCode: 1,
      message: expect.stringContaining('step "boom" failed'),
      maintenance: {},
      journal: { intact: true, records: readJournalLines(runDir).length },
      next: 'nothing to do',
    });
    expect(v.steps).toEqual([
      { id: 's1', kind: 'shell.run', status: 'undone', durationMs: expect.any(Number) },
      { id: 's2', kind: 'shell.run', status: 'undone', durationMs: expect.any(Number) },
      {
        id: 'boom',
        kind: 'shell.run',
        status: 'failed',
        durationMs: expect.any(Number),
        error: expect.stringContaining('exited 7'),
      },
    ]);
    const plain = await runCli(['status', runDir]);
    expect(plain.stdout).toMatch(/status\s+rolled-back \(exit 1\)/);
  });
});
