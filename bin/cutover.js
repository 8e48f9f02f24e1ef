#!/usr/bin/env node
// Thin launcher: the CLI is bundled into dist/bundle/ (built by `npm ci` through the prepare
// script, and by `npm run build`) so a command starts without loading ~100 modules one by one.
import('../dist/bundle/cli.js').then((m) => m.main(process.argv.slice(2)));
