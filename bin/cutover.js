#!/usr/bin/env node
// Launcher: the CLI is one CommonJS bundle (dist/bundle/cli.js, built by `npm ci` through the
// prepare script and by `npm run build`), compiled here with the V8 code cache written beside it
// at build time, so `cutover validate` starts without compiling what it runs (Node 20 has no
// module compile cache). A cache V8 does not accept (another Node) only means a slower start.
import { readFileSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const file = fileURLToPath(new URL('../dist/bundle/cli.js', import.meta.url));
const cacheFile = `${file}.cache`;
const writeCache = process.env.CUTOVER_CODE_CACHE === 'write'; // scripts/bundle.mjs
let cachedData;
if (!writeCache)
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache: compile
  }
const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
const cli = { exports: {} };
script.runInThisContext()(cli.exports, createRequire(file), cli, file, dirname(file));
if (writeCache) process.on('exit', () => writeFileSync(cacheFile, script.createCachedData()));
cli.exports.main(process.argv.slice(2));
