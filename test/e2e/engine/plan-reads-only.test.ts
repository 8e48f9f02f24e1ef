// `plan` reads only: the runbook's own commands — hooks and the maintenance statusCommand — are not
// run (a CI job planning a runbook pull request must not run the pull request's scripts), and the
// plan says so; `plan --run-commands` runs them.
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { writeRunbook } from '../../helpers/runbooks.js';
import { type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace;
let server: Server;
let rb: string;
const marks = () => ['status-ran', 'hook-ran'].filter((m) => existsSync(ws.path(m)));

beforeAll(async () => {
  ws = workspace();
  server = createServer((_req, res) => res.writeHead(200).end('shop'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  mkdirSync(ws.path('hooks'));
  const hook = ws.path('hooks', 'cutover-on-before-step');
  writeFileSync(hook, `#!/bin/sh\ntouch '${ws.path('hook-ran')}'\n`);
  chmodSync(hook, 0o755);
  rb = writeRunbook(ws.dir, {
    name: 'plan-reads-only',
    params: { mark: ws.path('status-ran') },
    // The helper's spec type does not list hooks; the runbook schema does.
    ...({ hooks: { dir: 'hooks' } } as object),
    steps: [
      {
        id: 'enter',
        kind: 'maintenance.enter',
        with: {
          command: 'true',
          statusCommand: 'touch ${params.mark}; echo off',
          statusMatches: '^on',
          paths: [{ name: 'web', url, timeout: '2s' }],
        },
      },
    ],
  });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  ws.cleanup();
});

describe('plan runs no author command', () => {
  it('without --run-commands: neither the hook nor the statusCommand runs, and the plan says so', async () => {
    const r = await runCli(['plan', rb, '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(marks()).toEqual([]);
    expect(r.stdout + r.stderr).toMatch(
      /hooks in .* not run \(a plan runs no author command; --run-commands/,
    );
    expect(r.stdout + r.stderr).toMatch(/statusCommand not run/);
  });

  it('with --run-commands: both run', async () => {
    for (const m of ['status-ran', 'hook-ran']) rmSync(ws.path(m), { force: true });
    const r = await runCli(['plan', rb, '--run-commands', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(marks()).toEqual(['status-ran', 'hook-ran']);
  });

  it('a world-writable hook is refused when the run would run it', async () => {
    chmodSync(ws.path('hooks', 'cutover-on-before-step'), 0o777);
    rmSync(ws.path('hook-ran'), { force: true });
    const r = await runCli(['plan', rb, '--run-commands', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.stdout + r.stderr).toMatch(/refused: it is writable by every user/);
    expect(existsSync(ws.path('hook-ran'))).toBe(false);
    chmodSync(ws.path('hooks', 'cutover-on-before-step'), 0o755);
  });
});
