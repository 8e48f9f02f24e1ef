#!/usr/bin/env node
// `npm run demo`: sandbox up → rehearsal of runbooks/sandbox.yaml under load → HTML report →
// sandbox down. The sandbox is taken down whatever happens, Ctrl-C included.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'cutover.js');
const sandboxDir = join(root, '.sandbox');
const runsDir = join(root, 'runs');
const report = join(runsDir, 'demo-report.html');
const started = performance.now();
let interrupted = false;

function cutover(args) {
  return new Promise((res) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' });
    child.on('exit', (code, signal) => res(code ?? (signal ? 130 : 1)));
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
let code = await cutover(['sandbox', 'up', '--dir', sandboxDir]);
if (code === 0 && !interrupted) {
  code = await cutover(['rehearse', 'runbooks/sandbox.yaml', '--runs-dir', runsDir, '--report', report]);
}
const down = await cutover(['sandbox', 'down', '--dir', sandboxDir]);
const wall = ((performance.now() - started) / 1000).toFixed(1);
if (code === 0) {
  console.log(`\ndemo finished in ${wall}s. Report: ${report}`);
  console.log(`Open it in a browser, or read the journal: node bin/cutover.js status runs/<run-id>`);
} else {
  console.error(
    `\ndemo ${interrupted ? 'interrupted' : 'failed'} (exit ${code}) after ${wall}s; the sandbox was taken down${down === 0 ? '' : ' — check `cutover sandbox status`'}`,
  );
}
process.exitCode = code || (down === 0 ? 0 : 3);
