// Builds dist/bundle/: the CLI as a few ESM files, so `cutover validate` starts without resolving
// and compiling ~100 modules one by one (tsc still builds dist/ for the typecheck and for
// `node dist/sandbox/app-ctl.js`). Heavy dependencies stay external and load when a command needs
// them; lazy imports become separate chunks. Run by `npm run build` and `prepare`.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
// --debug: readable output (no minification), for profiling and stack traces.
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

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  // services and app-ctl are started as their own processes by the sandbox (found next to the
  // module that starts them), so they are entries too.
  entryPoints: ['src/cli.ts', 'src/sandbox/services.ts', 'src/sandbox/app-ctl.ts'],
  outdir,
  entryNames: '[name]', // flat: the sandbox finds services.js and app-ctl.js next to its own chunk
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: !debug,
  plugins: [englishOnly],
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
  // commander is CommonJS: its require() calls need a require in ESM.
  banner: {
    js: "import{createRequire as __cutoverRequire}from'node:module';const require=__cutoverRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
