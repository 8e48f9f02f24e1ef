// Writes dist/bundle/cli.js.cache, V8's code cache of the CLI bundle, taken after the bundle has
// validated every runbook given: a later `cutover validate` then compiles none of what it runs,
// whichever of them it checks. Run by scripts/bundle.mjs. The bundle is compiled exactly as
// bin/cutover.js compiles it (same wrapper, same file name), or V8 would reject the cache.
const { readFileSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const vm = require('node:vm');

const dir = join(__dirname, '..', 'dist', 'bundle');
const file = join(dir, 'cli.js');
const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file });
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(file), cli, file, dir);

async function validateAll(runbooks) {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const said = [];
  process.stdout.write = process.stderr.write = (chunk) => said.push(String(chunk)) > 0;
  try {
    for (const runbook of runbooks) {
      process.exitCode = 0;
      await cli.exports.main(['validate', runbook]);
      if (process.exitCode) throw new Error(`validate ${runbook} exited ${process.exitCode}:\n${said.join('')}`);
    }
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

validateAll(process.argv.slice(2)).then(
  () => writeFileSync(`${file}.cache`, script.createCachedData()),
  (e) => {
    process.stderr.write(`code cache: ${e.message}\n`);
    process.exit(1);
  },
);
