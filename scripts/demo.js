#!/usr/bin/env node
// `npm run demo`: sandbox up → rehearsal of runbooks/sandbox.yaml under load → HTML report →
// sandbox down. A sandbox the demo started is taken down whatever happens, Ctrl-C included; one
// that was already running is put back to its seed state before and after, and left running.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'cutover.js');
const sandboxDir = join(root, '.sandbox');
const runsDir = join(root, 'runs');
const report = join(runsDir, 'demo-report.html');
const started = performance.now();
let interrupted = false;

function cutover(args, capture = false) {
  return new Promise((res) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d) => {
      out += d;
    });
    child.on('exit', (code, signal) => res({ code: code ?? (signal ? 130 : 1), out }));
  });
}

// The children get Ctrl-C from the terminal themselves; the demo only has to clean up after them.
process.on('SIGINT', () => {
  interrupted = true;
});
process.on('SIGTERM', () => {
  interrupted = true;
});

mkdirSync(runsDir, { recursive: true });
const wasUp = existsSync(join(sandboxDir, 'pids.json'))
  ? (await cutover(['sandbox', 'status', '--dir', sandboxDir, '--json'], true)).out.includes('"up": true')
  : false;
let code = wasUp
  ? (await cutover(['sandbox', 'reset', '--dir', sandboxDir])).code
  : (await cutover(['sandbox', 'up', '--dir', sandboxDir])).code;
if (code === 0 && !interrupted) {
  code = (await cutover(['rehearse', 'runbooks/sandbox.yaml', '--runs-dir', runsDir, '--report', report]))
    .code;
}
const down = wasUp
  ? (await cutover(['sandbox', 'reset', '--dir', sandboxDir])).code
  : (await cutover(['sandbox', 'down', '--dir', sandboxDir])).code;
const wall = ((performance.now() - started) / 1000).toFixed(1);
if (code === 0) {
  console.log(
    `\ndemo finished in ${wall}s${wasUp ? ' (your running sandbox was used, reset and left running)' : ''}. Report: ${report}`,
  );
  console.log(`Open it in a browser, or read the journal: node bin/cutover.js status runs/<run-id>`);
} else {
  console.error(
    `\ndemo ${interrupted ? 'interrupted' : 'failed'} (exit ${code}) after ${wall}s; ${wasUp ? 'your sandbox was put back to its seed state and left running' : 'the sandbox was taken down'}${down === 0 ? '' : ' — check `cutover sandbox status`'}`,
  );
}
process.exitCode = code || (down === 0 ? 0 : 3);
