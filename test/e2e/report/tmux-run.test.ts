// `cutover run` in a real terminal, as a new user would: tmux at 80 and 120 columns, the approval
// gate answered with send-keys, the screen read with capture-pane. Each step of the live list must
// be on the final screen exactly once (a wrapped status line used to leave a copy per redraw).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { CLI, REPO } from '../../helpers/cli.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { cliEnv, RUNBOOK, removeTemps, sandboxSteps, tempDir } from '../../integration/cutover/harness.js';

const TMUX = '/usr/bin/tmux';
const SKIP = !existsSync(TMUX);
// Our own tmux server: never another session's.
const SOCKET = `cutover-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync(TMUX, ['-L', SOCKET, ...args], { encoding: 'utf8' });

let env: SandboxEnv;
beforeAll(() => {
  env = sandboxEnv();
});
afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    // no server left
  }
  await resetSandbox(env);
  removeTemps();
});

async function screenUntil(session: string, re: RegExp, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = tmux('capture-pane', '-p', '-t', session);
    if (re.test(s)) return s;
    if (Date.now() > end) throw new Error(`tmux ${session}: ${re} not on screen in ${timeoutMs} ms:\n${s}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('cutover run in tmux', () => {
  it.skipIf(SKIP).each([80, 120])(
    'at %i columns: the gate is answered, every step is on the final screen exactly once',
    async (width) => {
      await resetSandbox(env);
      const dir = tempDir('tmux');
      const script = join(dir, 'run.sh');
      const vars = Object.entries(cliEnv(env))
        .filter(([, v]) => typeof v === 'string')
        .map(([k, v]) => `export ${k}='${String(v).replace(/'/g, `'\\''`)}'`);
      writeFileSync(
        script,
        `#!/bin/sh\n${vars.join('\n')}\nunset CI NO_COLOR CUTOVER_HOOKS_DIR\ncd '${REPO}'\nnode '${CLI}' run '${RUNBOOK}' --execute --runs-dir '${join(dir, 'runs')}'\necho "EXIT=$?"\nsleep 600\n`,
      );
      chmodSync(script, 0o755);
      const session = `w${width}`;
      tmux('new-session', '-d', '-s', session, '-x', String(width), '-y', '50', script);
      try {
        // The go/no-go gate of enter-maintenance: answered as the operator would.
        await screenUntil(session, /Run step "enter-maintenance"/, 60_000);
        tmux('send-keys', '-t', session, 'y', 'Enter');
        const screen = await screenUntil(session, /EXIT=\d+/, 90_000);
        expect(screen, screen).toMatch(/EXIT=0/);
        expect(screen).toMatch(/succeeded \(exit 0\)/);
        const lines = screen.split('\n');
        for (const line of lines) expect(line.length).toBeLessThanOrEqual(width);
        for (const { id } of sandboxSteps()) {
          const rows = lines.filter((l) => new RegExp(`^\\S+ ${id}\\s`).test(l));
          expect(rows, `${id} at ${width} columns:\n${screen}`).toHaveLength(1);
          expect(rows[0]).toMatch(/^✔ /);
        }
      } finally {
        tmux('kill-session', '-t', session);
      }
    },
    180_000,
  );
});
