// Builds dist/bundle/: the CLI as one CommonJS file, so a command starts without resolving and
// compiling ~100 modules one by one, plus the V8 code cache bin/cutover.js compiles it with (Node 20
// has no module compile cache: module.enableCompileCache is Node 22). tsc still builds dist/ for the
// typecheck and for `node dist/sandbox/app-ctl.js`. Heavy dependencies stay external and load when
// a command needs them. Run by `npm run build` and `prepare`; `--debug` leaves it readable.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
const debug = process.argv.includes('--debug');
const zodDir = dirname(createRequire(import.meta.url).resolve('zod/package.json'));

// zod's classic API re-exports every locale (~60 of them, most of its bytes); the CLI uses only
// the English messages zod configures by default, so the locales namespace gets English alone.
const englishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.startsWith(join(zodDir, 'v4'))
        ? { path: 'zod-locales', namespace: 'zod-english-only' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, () => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: join(zodDir, 'v4', 'locales'),
      loader: 'js',
    }));
  },
};

// commander requires child_process at load for executable subcommands (which the CLI has none
// of); loading it pulls in net, dgram and streams: about twenty builtin modules every command paid
// for. Its only use is childProcess.spawn, so that is what it gets, loaded on the first call.
const lazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!text.includes(eager) || /childProcess\.(?!spawn\()/.test(text)) {
        process.stderr.write(`bundle: ${args.path} no longer matches; child_process stays eager\n`);
        return undefined;
      }
      return {
        contents: text.replace(
          eager,
          "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };",
        ),
        loader: 'js',
      };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
// The bundle is CommonJS (vm.Script takes a code cache; an ES module cannot on Node 20).
writeFileSync(join(outdir, 'package.json'), '{ "type": "commonjs" }\n');
await build({
  absWorkingDir: root,
  // services and app-ctl are started as their own processes by the sandbox, which looks for them
  // next to the file its code is in (here: cli.js).
  entryPoints: {
    cli: 'src/cli.ts',
    services: 'src/sandbox/services.ts',
    'app-ctl': 'src/sandbox/app-ctl.ts',
  },
  outdir,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: !debug,
  // import() becomes require(): code V8 restores from a code cache loses the host options import()
  // needs (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING on Node 20). Every external ships CommonJS.
  supported: { 'dynamic-import': false },
  plugins: [englishOnly, lazyChildProcess],
  // Loaded only by commands that talk to the systems (and preloaded before a run's first step).
  external: [
    '@aws-sdk/*',
    'mysql2',
    'mysql2/*',
    'zx',
    '@inquirer/*',
    'dns-packet',
    'fast-xml-parser',
    'playwright-core',
  ],
  // The sources are ES modules that find their siblings through import.meta.url.
  define: { 'import.meta.url': '__cutoverModuleUrl' },
  banner: { js: 'var __cutoverModuleUrl=require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
});

if (!debug && /\bimport\(/.test(readFileSync(join(outdir, 'cli.js'), 'utf8'))) {
  process.stderr.write(
    'bundle: dist/bundle/cli.js still calls import(): it would fail under the code cache\n',
  );
  process.exit(1);
}

// The code cache holds the bytecode of what `validate` runs on each shipped runbook, so the next
// start compiles nothing of it.
const runbooks = readdirSync(join(root, 'runbooks'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => join(root, 'runbooks', f));
const r = spawnSync(process.execPath, [join(root, 'scripts', 'code-cache.cjs'), ...runbooks], {
  cwd: root,
  encoding: 'utf8',
});
if (r.status !== 0) {
  process.stderr.write(`bundle: writing the code cache failed (exit ${r.status}):\n${r.stderr}`);
  process.exit(1);
}
