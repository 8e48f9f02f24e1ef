// crons.disable / crons.enable on the sandbox's app hosts' crontab files: locally, and as remote
// hosts through a stand-in `ssh` that runs the script in the host's directory (so host names,
// quoting and the remote shell go through the same path as with the real ssh).
import { type ChildProcess, spawn } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { captureSandboxState } from '../../../src/sandbox/state.js';
import { cronsDisable, cronsEnable } from '../../../src/steps/ops/crons.js';
import { activeJobLines } from '../../../src/steps/ops/crontab.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { codeOf, createHarness, type Harness, messageOf, runStep, undoStep } from './harness.js';

const env = sandboxEnv();
const app1 = env.SANDBOX_CRONTAB_APP1!;
const app2 = env.SANDBOX_CRONTAB_APP2!;
const tmp = mkdtempSync(join(tmpdir(), 'ops-crons-'));
const marker = join(tmp, 'executed');
// A job whose every part would create the marker if anything ever ran it.
const EVIL = `* * * * * touch ${marker}; echo $(touch ${marker}) \`touch ${marker}\` && sh -c 'touch ${marker}' | tee "${marker}" # ;'"\n`;

const bin = join(tmp, 'bin');
mkdirSync(bin);
writeFileSync(
  join(bin, 'ssh'),
  `#!/bin/sh
# Stand-in for ssh: options, then "--", the host and the remote command (run by sh, as sshd does).
while [ $# -gt 0 ]; do case "$1" in -o) shift 2;; --) shift; break;; -*) shift;; *) break;; esac; done
host=$1; shift
case "$host" in
  app1|app2) dir="$FAKE_SSH_ROOT/$host";;
  app2-flaky) dir="$FAKE_SSH_ROOT/app2"; case "$*" in *'base64 -d'*) echo "Connection to app2-flaky closed by remote host." >&2; exit 255;; esac;;
  *) echo "ssh: Could not resolve hostname $host: Name or service not known" >&2; exit 255;;
esac
cd "$dir" && exec sh -c "$*"
`,
);
chmodSync(join(bin, 'ssh'), 0o755);
const sshEnv = { ...env, PATH: `${bin}:${process.env.PATH}`, FAKE_SSH_ROOT: dirname(dirname(app1)) };

let h: Harness;
let before: { app1: Buffer; app2: Buffer };
const bytes = () => ({ app1: readFileSync(app1), app2: readFileSync(app2) });
const seed = bytes();
const children: ChildProcess[] = [];

beforeEach(() => {
  appendFileSync(app1, EVIL);
  before = bytes();
});
afterEach(async () => {
  await h?.close();
  for (const c of children.splice(0)) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  expect(existsSync(marker)).toBe(false);
  writeFileSync(app1, seed.app1);
  writeFileSync(app2, seed.app2);
});
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await resetSandbox(env);
});

describe('crons.disable', () => {
  it('comments out every job of the cron files, verifies none is active; undo leaves the files byte-identical and nothing ran', async () => {
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, cronsDisable, { files: [app1, app2] });
    expect(step.error).toBeUndefined();
    expect(step.outputs).toMatchObject({ hosts: ['local'], jobs: 6, timers: 0 });
    const now = bytes();
    expect(activeJobLines(now.app1.toString())).toEqual([]);
    expect(activeJobLines(now.app2.toString())).toEqual([]);
    expect(now.app1.toString()).toContain(`#cutover-disabled# ${EVIL}`);
    // The snapshot holds the exact previous content, as the journal will.
    const snap = step.snapshot as { hosts: { targets: { before: { text: string } }[] }[] };
    expect(snap.hosts[0]!.targets.map((t) => t.before.text)).toEqual([
      before.app1.toString(),
      before.app2.toString(),
    ]);

    await undoStep(h, cronsDisable, step);
    expect(bytes()).toEqual(before);
    await undoStep(h, cronsDisable, step);
    expect(bytes()).toEqual(before);
    expect(h.warnings).toEqual([]);
  });

  it('crons.enable is the exact opposite; its undo disables again', async () => {
    h = createHarness({ mode: 'live', env });
    expect((await runStep(h, cronsDisable, { files: [app1, app2] })).error).toBeUndefined();
    const disabled = bytes();
    const enable = await runStep(h, cronsEnable, { files: [app1, app2] });
    expect(enable.error).toBeUndefined();
    expect(enable.outputs).toMatchObject({ jobs: 6 });
    expect(bytes()).toEqual(before);
    await undoStep(h, cronsEnable, enable);
    expect(bytes()).toEqual(disabled);
  });

  it('works on hosts over ssh; undo leaves them byte-identical', async () => {
    h = createHarness({ mode: 'live', env: sshEnv });
    const state = await captureSandboxState(env);
    const step = await runStep(h, cronsDisable, { hosts: ['app1', 'app2'], files: ['crontab'] });
    expect(step.error).toBeUndefined();
    expect(step.outputs).toMatchObject({ hosts: ['app1', 'app2'], jobs: 6 });
    expect(activeJobLines(readFileSync(app2, 'utf8'))).toEqual([]);
    await undoStep(h, cronsDisable, step);
    expect(bytes()).toEqual(before);
    expect(await captureSandboxState(env)).toEqual(state);
  });

  it('one host failing mid-way fails the step and puts back the hosts already done', async () => {
    h = createHarness({ mode: 'live', env: sshEnv });
    const step = await runStep(h, cronsDisable, { hosts: ['app1', 'app2-flaky'], files: ['crontab'] });
    expect(codeOf(step.error)).toBe('HOST_UNREACHABLE');
    expect(messageOf(step.error)).toMatch(
      /^host app2-flaky: ssh failed \(exit 255: Connection to app2-flaky closed by remote host\.\)/,
    );
    expect(bytes()).toEqual(before);
    // The engine then undoes the failed step from its snapshot: nothing left to do, no error.
    await undoStep(h, cronsDisable, step);
    expect(bytes()).toEqual(before);
  });

  it('an unreachable host fails before anything changes', async () => {
    h = createHarness({ mode: 'live', env: sshEnv });
    const p = cronsDisable.params.parse({ hosts: ['app1', 'down'], files: ['crontab'] });
    await expect(cronsDisable.snapshot!(h.ctx(), p)).rejects.toMatchObject({
      code: 'HOST_UNREACHABLE',
      message: expect.stringMatching(/^host down: ssh failed/),
    });
    expect(bytes()).toEqual(before);
  });

  it('a host name with ";" in it is refused by validate and never executed at run time', async () => {
    const host = `app1;touch ${marker}`;
    const issues: string[] = [];
    cronsDisable.validate!(cronsDisable.params.parse({ hosts: [host], files: [app1] }), {
      pos: () => ({ file: 'x', line: 1, col: 1 }),
      issue: (_p, m) => issues.push(m),
      databases: new Set(),
      budgetMs: undefined,
    });
    expect(issues).toEqual([
      `host ${JSON.stringify(host)} is not a host name: use letters, digits, '.', '-', '_' (optionally user@), or "local"`,
    ]);
    h = createHarness({ mode: 'live', env: sshEnv });
    const p = cronsDisable.params.parse({ hosts: ['app1', host], files: ['crontab'] });
    await expect(cronsDisable.snapshot!(h.ctx(), p)).rejects.toMatchObject({ code: 'BAD_HOST' });
    expect(existsSync(marker)).toBe(false);
    expect(bytes()).toEqual(before);
  });

  it('waits for a running job to finish (process pattern), and fails past the deadline naming it', async () => {
    h = createHarness({ mode: 'live', env });
    const job = spawn('sleep', ['1.37'], { stdio: 'ignore' });
    children.push(job);
    const t0 = performance.now();
    const step = await runStep(h, cronsDisable, {
      files: [app1],
      waitFor: { processPattern: '^sleep 1\\.37$', timeout: '10s', interval: '100ms' },
    });
    const waited = performance.now() - t0;
    expect(step.error).toBeUndefined();
    expect(job.exitCode).toBe(0);
    expect(waited).toBeGreaterThan(1000);
    await undoStep(h, cronsDisable, step);

    const stuck = spawn('sleep', ['30.41'], { stdio: 'ignore' });
    children.push(stuck);
    const late = await runStep(h, cronsDisable, {
      files: [app1],
      waitFor: { processPattern: '^sleep 30\\.41$', timeout: '500ms', interval: '100ms' },
    });
    expect(codeOf(late.error)).toBe('CRON_JOBS_STILL_RUNNING');
    expect(messageOf(late.error)).toBe(
      `cron jobs still running after 500ms: local: pid ${stuck.pid} (sleep) — let them finish (raise waitFor.timeout) or stop them`,
    );
    await undoStep(h, cronsDisable, late);
    expect(bytes()).toEqual(before);
  });

  it('waits for a lock file to go away', async () => {
    h = createHarness({ mode: 'live', env });
    const lock = join(tmp, 'sync.lock');
    writeFileSync(lock, '');
    const t = setTimeout(() => unlinkSync(lock), 600);
    const t0 = performance.now();
    const step = await runStep(h, cronsDisable, {
      files: [app2],
      waitFor: { lockFile: lock, timeout: '5s', interval: '100ms' },
    });
    clearTimeout(t);
    expect(step.error).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThan(500);
    await undoStep(h, cronsDisable, step);
    expect(bytes()).toEqual(before);
  });

  it('edits the user crontab through crontab(1) and restores it exactly', async () => {
    // No cron daemon here: a stand-in crontab that keeps the table in a file.
    const spool = join(tmp, 'spool');
    writeFileSync(spool, before.app1);
    writeFileSync(
      join(bin, 'crontab'),
      `#!/bin/sh\ncase "$1" in -l) [ -f '${spool}' ] && exec cat '${spool}'; echo "no crontab for test" >&2; exit 1;; -r) rm -f '${spool}';; *) cp "$1" '${spool}';; esac\n`,
    );
    chmodSync(join(bin, 'crontab'), 0o755);
    h = createHarness({ mode: 'live', env: sshEnv });
    const step = await runStep(h, cronsDisable, {});
    expect(step.error).toBeUndefined();
    expect(activeJobLines(readFileSync(spool, 'utf8'))).toEqual([]);
    await undoStep(h, cronsDisable, step);
    expect(readFileSync(spool).equals(before.app1)).toBe(true);
    unlinkSync(join(bin, 'crontab'));
  });

  it('stops active systemd timers and starts exactly those again on undo; crons.enable starts them', async () => {
    // No systemd here: a stand-in systemctl keeping each unit's state in a file.
    const units = join(tmp, 'units');
    mkdirSync(units, { recursive: true });
    writeFileSync(join(units, 'sync.timer'), 'active');
    writeFileSync(join(units, 'report.timer'), 'inactive');
    writeFileSync(
      join(bin, 'systemctl'),
      `#!/bin/sh
verb=$1; shift; [ "$1" = -- ] && shift
for u in "$@"; do
  case "$verb" in
    is-active) s=$(cat '${units}'/"$u" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ] || exit 3;;
    stop) echo inactive > '${units}'/"$u";;
    start) echo active > '${units}'/"$u";;
  esac
done
`,
    );
    chmodSync(join(bin, 'systemctl'), 0o755);
    const state = (u: string) => readFileSync(join(units, u), 'utf8').trim();
    try {
      h = createHarness({ mode: 'live', env: sshEnv });
      const step = await runStep(h, cronsDisable, { hosts: ['app1'], timers: ['sync', 'report.timer'] });
      expect(step.error).toBeUndefined();
      expect(step.snapshot).toMatchObject({
        hosts: [
          {
            host: 'app1',
            targets: [],
            timers: [
              { unit: 'sync.timer', state: 'active' },
              { unit: 'report.timer', state: 'inactive' },
            ],
          },
        ],
      });
      expect(step.outputs).toMatchObject({ timers: 1, jobs: 0 });
      expect([state('sync.timer'), state('report.timer')]).toEqual(['inactive', 'inactive']);
      await undoStep(h, cronsDisable, step);
      expect([state('sync.timer'), state('report.timer')]).toEqual(['active', 'inactive']);

      const enable = await runStep(h, cronsEnable, { hosts: ['app1'], timers: ['sync', 'report'] });
      expect(enable.error).toBeUndefined();
      expect([state('sync.timer'), state('report.timer')]).toEqual(['active', 'active']);
      await undoStep(h, cronsEnable, enable);
      expect([state('sync.timer'), state('report.timer')]).toEqual(['active', 'inactive']);
    } finally {
      unlinkSync(join(bin, 'systemctl'));
    }
  });

  it('dry run: reads for real, records the edits, changes nothing', async () => {
    h = createHarness({ mode: 'dry', env });
    const step = await runStep(h, cronsDisable, { files: [app1, app2] });
    expect(step.error).toBeUndefined();
    expect(h.planLines()).toEqual([
      `would run cron edit on local: comment out 4 job(s) in ${app1}`,
      `would run cron edit on local: comment out 2 job(s) in ${app2}`,
    ]);
    expect(cronsDisable.describe(step.params, step.snapshot)).toEqual([
      `would comment out 2 cron job(s) in ${app2} on local`,
      `would comment out 4 cron job(s) in ${app1} on local`,
    ]);
    expect(bytes()).toEqual(before);
  });
});
