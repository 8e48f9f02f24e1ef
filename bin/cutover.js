#!/usr/bin/env node
// Launcher (CommonJS, see bin/package.json: no ES module loader to start). The CLI is one bundle,
// dist/bundle/cli.js (built by `npm ci` through the prepare script, and by `npm run build`),
// compiled here with the V8 code cache written beside it at build time, so `cutover validate`
// starts without compiling what it runs (Node 20 has no module compile cache). A cache V8 does not
// accept (another Node version) only means a slower start.
const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const vm = require('node:vm');

const dir = join(__dirname, '..', 'dist', 'bundle');
const file = join(dir, 'cli.js');
let cachedData;
try {
  cachedData = readFileSync(`${file}.cache`); // written by scripts/code-cache.cjs
} catch {
  // no cache: compile
}
let source;
try {
  source = readFileSync(file, 'utf8');
} catch {
  process.stderr.write(
    `cutover: ${file} is missing: run \`npm run build\` (or \`npm ci\`) in ${join(__dirname, '..')}\n`,
  );
  process.exit(2);
}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(file), cli, file, dir);
cli.exports.main(process.argv.slice(2));
