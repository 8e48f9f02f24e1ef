// The lifecycle through the real engine (runSession, as the CLI runs it, with createLifecycle wired
// the way src/cli.ts wires it): user hooks in the runbook's hooks directory and webhook
// notifications that fail (HTTP 500, no answer) without failing the run. No sandbox needed.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../../src/engine/events.js';
import { runSession } from '../../../src/session.js';
import { createLifecycle } from '../../../src/steps/ops/lifecycle.js';
import { notify } from '../../../src/steps/ops/notify.js';
import { codeOf, createHarness, messageOf, runStep } from './harness.js';

let dir: string;
let hooks: string;
let failing: http.Server;
let silent: http.Server;
let ok: http.Server;
const received: { url: string; body: string }[] = [];
const counts = { failing: 0, silent: 0 };
let port: { failing: number; silent: number; ok: number };

function listen(handler: http.RequestListener): Promise<http.Server> {
  return new Promise((resolve) => {
    const s = http.createServer(handler);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}
const portOf = (s: http.Server) => (s.address() as AddressInfo).port;

beforeAll(async () => {
  failing = await listen((_req, res) => {
    counts.failing++;
    res.writeHead(500).end('internal error');
  });
  // Accepts, reads, never answers.
  silent = await listen((req) => {
    counts.silent++;
    req.resume();
  });
  ok = await listen((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ url: req.url ?? '', body });
      res.writeHead(200).end('ok');
    });
  });
  port = { failing: portOf(failing), silent: portOf(silent), ok: portOf(ok) };
});
afterAll(async () => {
  silent.closeAllConnections();
  await Promise.all([failing, silent, ok].map((s) => new Promise((r) => s.close(r))));
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ops-lifecycle-'));
  hooks = join(dir, 'hooks');
  mkdirSync(hooks);
  received.length = 0;
  counts.failing = 0;
  counts.silent = 0;
  return () => rmSync(dir, { recursive: true, force: true });
});

function hook(event: string, body: string) {
  const f = join(hooks, `cutover-on-${event}`);
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
}

// Every hook appends its CUTOVER_* variables to calls.log, one line per call.
const RECORD = `env | grep '^CUTOVER_' | sort | tr '\\n' ' ' >> "$CUTOVER_RUN_DIR/../../calls.log"; echo >> "$CUTOVER_RUN_DIR/../../calls.log"`;

function runbook(extra = ''): string {
  const file = join(dir, 'runbook.yaml');
  writeFileSync(
    file,
    `version: 1
name: ops-lifecycle
hooks: { dir: hooks }
notify:
  - { webhook: "http://127.0.0.1:${port.failing}/services/T0/B0/secret-path", format: slack }
  - { webhook: "\${env.OPS_TEST_WEBHOOK}", format: json, timeout: 300ms }
  - { webhook: "http://127.0.0.1:${port.ok}/hook", format: json, on: [failure, rollback, success] }
steps:
  - id: first
    kind: shell.run
    with: { command: "echo made > ${join(dir, 'made')}", undo: "rm -f ${join(dir, 'made')}" }
  - id: tell
    kind: notify
    with: { webhook: "http://127.0.0.1:${port.failing}/x", message: "entering maintenance" }
  - id: second
    kind: shell.run
    with: { command: "true" }
${extra}`,
  );
  return file;
}

async function run(file: string, mode: 'run' | 'plan' = 'run', hooksInDryRun = false) {
  const events: EngineEvent[] = [];
  const env = { OPS_TEST_WEBHOOK: `http://127.0.0.1:${port.silent}/hook`, CUTOVER_HOOK_TIMEOUT: '2s' };
  Object.assign(process.env, env);
  try {
    const r = await runSession(
      { mode, file },
      {
        runsDir: join(dir, 'runs'),
        yes: true,
        render: 'json',
        onEvent: (e) => events.push(e),
        lifecycle: (p, warn) =>
          createLifecycle({
            runbookDir: dirname(p.loaded.file),
            ...(p.runbook.hooks?.dir ? { hooksDir: p.runbook.hooks.dir } : {}),
            ...(p.runbook.notify ? { notify: p.runbook.notify } : {}),
            runbookName: p.runbook.name,
            warn,
            env: p.env,
            hooksInDryRun,
          }),
      },
    );
    const warnings = events
      .filter((e): e is Extract<EngineEvent, { type: 'log' }> => e.type === 'log' && e.level === 'warn')
      .map((e) => e.message);
    const calls = existsSync(join(dir, 'calls.log'))
      ? readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n')
      : [];
    return { ...r, events, warnings, calls };
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
  }
}

describe('lifecycle through the engine', () => {
  it('webhooks that answer 500 or never answer only warn: the run succeeds; hooks get their variables', async () => {
    for (const e of ['start', 'before-step', 'after-step', 'success']) hook(e, RECORD);
    const t0 = performance.now();
    const r = await run(runbook());
    expect(r.status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    expect(existsSync(join(dir, 'made'))).toBe(true);
    // start and success to the 500 and the silent webhook, plus the notify step's own post.
    expect(counts).toEqual({ failing: 3, silent: 2 });
    expect(r.warnings.filter((w) => /not delivered/.test(w)).sort()).toEqual(
      [
        `notification (start) not delivered (the run goes on): webhook http://127.0.0.1:${port.failing} answered 500`,
        `notification (start) not delivered (the run goes on): webhook http://127.0.0.1:${port.silent}: no answer within 300ms`,
        `notification (success) not delivered (the run goes on): webhook http://127.0.0.1:${port.failing} answered 500`,
        `notification (success) not delivered (the run goes on): webhook http://127.0.0.1:${port.silent}: no answer within 300ms`,
        `notification not delivered (the run goes on): webhook http://127.0.0.1:${port.failing} answered 500`,
      ].sort(),
    );
    // The secret path of a webhook URL is never shown.
    expect(JSON.stringify(r.events)).not.toContain('secret-path');
    expect(performance.now() - t0).toBeLessThan(5000);
    // The third webhook (success only) got a JSON body.
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      text: `cutover ops-lifecycle: run ${r.runId} succeeded`,
      event: 'success',
      runId: r.runId,
      runbook: 'ops-lifecycle',
    });

    const calls = r.calls;
    expect(calls.map((c) => /CUTOVER_EVENT=(\S+)/.exec(c)?.[1])).toEqual([
      'start',
      'before-step',
      'after-step',
      'before-step',
      'after-step',
      'before-step',
      'after-step',
      'success',
    ]);
    for (const v of [
      'CUTOVER_DRY_RUN=0',
      'CUTOVER_EVENT=before-step',
      'CUTOVER_HOOK=cutover-on-before-step',
      'CUTOVER_RUNBOOK=ops-lifecycle',
      `CUTOVER_RUN_DIR=${r.runDir}`,
      `CUTOVER_RUN_ID=${r.runId}`,
      'CUTOVER_STEP_ID=first',
      'CUTOVER_STEP_KIND=shell.run',
    ])
      expect(calls[1]).toContain(`${v} `);
    expect(calls[1]).not.toMatch(/CUTOVER_ERROR|CUTOVER_STATUS/);
    expect(calls[7]).toMatch(/CUTOVER_STATUS=succeeded/);
  });

  it('a failing cutover-on-before-step fails the step: the run rolls back, failure and rollback hooks run', async () => {
    hook(
      'before-step',
      `${RECORD}\n[ "$CUTOVER_STEP_ID" = second ] && { echo "freeze window closed" >&2; exit 3; }\nexit 0`,
    );
    hook('failure', RECORD);
    hook('rollback', RECORD);
    const r = await run(runbook());
    expect(r.status).toBe('rolled-back');
    expect(r.exitCode).toBe(1);
    // The first step was undone; the second never ran.
    expect(existsSync(join(dir, 'made'))).toBe(false);
    const failed = r.events.find((e) => e.type === 'step' && e.state === 'failed') as Extract<
      EngineEvent,
      { type: 'step' }
    >;
    expect(failed.stepId).toBe('second');
    expect(failed.error).toEqual({
      code: 'HOOK_FAILED',
      message: 'hook cutover-on-before-step exited 3: freeze window closed',
    });
    const failure = r.calls.find((c) => c.includes('CUTOVER_EVENT=failure'))!;
    expect(failure).toMatch(
      /CUTOVER_ERROR=hook cutover-on-before-step exited 3: freeze window closed CUTOVER_ERROR_CODE=HOOK_FAILED/,
    );
    expect(failure).toMatch(/CUTOVER_STEP_ID=second/);
    expect(r.calls.some((c) => c.includes('CUTOVER_EVENT=rollback'))).toBe(true);
    // failure + rollback notifications went out (and the 500s were only warned about).
    expect(received.map((x) => JSON.parse(x.body).event)).toEqual(['failure', 'rollback']);
  });

  it('dry run: no hook runs unless asked (it says so); no notification is sent', async () => {
    hook('before-step', RECORD);
    const r = await run(runbook(), 'plan');
    expect(r.status).toBe('planned');
    expect(r.calls).toEqual([]);
    expect(
      r.warnings.filter((w) => /hooks in .* not run \(a plan runs no author command/.test(w)),
    ).toHaveLength(1);
    expect(counts).toEqual({ failing: 0, silent: 0 });
    expect(received).toEqual([]);
  });

  it('dry run with hooks asked for (plan --run-commands): hooks run with CUTOVER_DRY_RUN=1', async () => {
    hook('before-step', RECORD);
    const r = await run(runbook(), 'plan', true);
    expect(r.status).toBe('planned');
    expect(r.calls).toHaveLength(3);
    for (const c of r.calls) expect(c).toContain('CUTOVER_DRY_RUN=1');
    expect(counts).toEqual({ failing: 0, silent: 0 });
    expect(received).toEqual([]);
    expect(existsSync(join(dir, 'made'))).toBe(false);
  });
});

/** Alive and not a zombie (here PID 1 may not reap orphans: a killed orphan lingers as Z). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
}

describe('hooks', () => {
  const info = { runId: 'r1', runDir: '/tmp/r1', dryRun: false, stepId: 's1', kind: 'shell.run' };

  it('a missing hook is skipped; a non-executable one is an error', async () => {
    const warns: string[] = [];
    const lc = createLifecycle({
      runbookDir: dir,
      hooksDir: 'hooks',
      runbookName: 'x',
      warn: (m) => warns.push(m),
      env: { PATH: process.env.PATH },
    });
    await lc('before-step', info);
    writeFileSync(join(hooks, 'cutover-on-before-step'), '#!/bin/sh\nexit 0\n');
    await expect(lc('before-step', info)).rejects.toMatchObject({ code: 'HOOK_NOT_EXECUTABLE' });
    expect(warns).toEqual([]);
  });

  it('a hook another user could have changed is refused, and not run', async () => {
    const made = join(dir, 'unsafe-ran');
    const lc = createLifecycle({
      runbookDir: dir,
      hooksDir: 'hooks',
      runbookName: 'x',
      warn: () => {},
      env: { PATH: process.env.PATH },
    });
    hook('before-step', `touch '${made}'`);
    chmodSync(join(hooks, 'cutover-on-before-step'), 0o777);
    await expect(lc('before-step', info)).rejects.toMatchObject({
      code: 'HOOK_UNSAFE',
      message: expect.stringMatching(/writable by every user/),
    });
    chmodSync(join(hooks, 'cutover-on-before-step'), 0o755);
    chmodSync(hooks, 0o777);
    await expect(lc('before-step', info)).rejects.toMatchObject({
      message: expect.stringMatching(/its directory/),
    });
    expect(existsSync(made)).toBe(false);
    chmodSync(hooks, 0o755);
    await lc('before-step', info);
    expect(existsSync(made)).toBe(true);
  });

  it('a hook that runs past its timeout is stopped, with what it started', async () => {
    const pidFile = join(dir, 'child.pid');
    hook('after-step', `sleep 30 & echo $! > '${pidFile}'; wait`);
    const lc = createLifecycle({
      runbookDir: dir,
      hooksDir: 'hooks',
      runbookName: 'x',
      warn: () => {},
      env: { PATH: process.env.PATH },
      hookTimeoutMs: 300,
    });
    const t0 = performance.now();
    const err = await lc('after-step', info).catch((e) => e);
    expect(codeOf(err)).toBe('HOOK_TIMEOUT');
    expect(messageOf(err)).toBe('hook cutover-on-after-step did not finish within 300ms; it was stopped');
    expect(performance.now() - t0).toBeLessThan(2000);
    const child = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    expect(running(child)).toBe(false);
  });

  it('warns when the hooks directory does not exist', () => {
    const warns: string[] = [];
    createLifecycle({
      runbookDir: dir,
      hooksDir: 'nope',
      runbookName: 'x',
      warn: (m) => warns.push(m),
      env: {},
    });
    expect(warns).toEqual([`hooks directory ${join(dir, 'nope')} does not exist: no hooks will run`]);
  });
});

describe('notify kind', () => {
  it('posts Slack JSON; a 500, no answer, or a refused connection warns and the step still succeeds', async () => {
    const h = createHarness({
      mode: 'live',
      env: { SLACK_WEBHOOK_URL: `http://127.0.0.1:${port.ok}/services/T/B/tok`, DB_PASSWORD: 'hunter22' },
    });
    const good = await runStep(h, notify, {
      webhook: { env: 'SLACK_WEBHOOK_URL' },
      message: 'maintenance on; password hunter22',
    });
    expect(good.outputs).toEqual({ delivered: true, status: 200 });
    expect(received.at(-1)).toEqual({
      url: '/services/T/B/tok',
      body: '{"text":"maintenance on; password ***"}',
    });
    const refusedPort = await new Promise<number>((resolve) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = portOf(s);
        s.close(() => resolve(p));
      });
    });
    for (const [webhook, problem] of [
      [`http://127.0.0.1:${port.failing}/x`, `webhook http://127.0.0.1:${port.failing} answered 500`],
      [
        `http://127.0.0.1:${port.silent}/x`,
        `webhook http://127.0.0.1:${port.silent}: no answer within 300ms`,
      ],
      [`http://127.0.0.1:${refusedPort}/x`, `webhook http://127.0.0.1:${refusedPort}: ECONNREFUSED`],
    ] as const) {
      const r = await runStep(h, notify, { webhook, message: 'hello', timeout: '300ms' });
      expect(r.error).toBeUndefined();
      expect(r.outputs?.delivered).toBe(false);
      expect(h.warnings.at(-1)).toBe(`notification not delivered (the run goes on): ${problem}`);
    }
    const missing = await runStep(h, notify, { webhook: { env: 'NOT_SET' }, message: 'x' });
    expect(missing.outputs).toEqual({ delivered: false, status: null });
    expect(h.warnings.at(-1)).toBe('notification not sent: webhook: environment variable NOT_SET is not set');
    await h.close();
  });
});
