#!/usr/bin/env node
// The demo app's operator command, as a runbook step or a person on an "app host" would run it:
//   node dist/sandbox/app-ctl.js maintenance on [--scope all|web] [--dir .sandbox]
//   node dist/sandbox/app-ctl.js maintenance off|status [--dir .sandbox]
//   node dist/sandbox/app-ctl.js db dns|proxy|status [--dir .sandbox]   (how the app reaches MySQL)
// It writes the maintenance file the app reads on every request, so the app need not be reachable.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DIR, type MaintenanceScope } from './config.js';
import { readDbRoute, readMaintenance, writeDbRoute, writeMaintenance } from './maintenance.js';

/** The demo app's route file (dns or proxy) in a sandbox directory. */
export function dbRouteFile(dir: string): string {
  return join(dir, 'app', 'db-route');
}

const USAGE =
  'usage: app-ctl maintenance on|off|status [--scope all|web] [--dir DIR] | app-ctl db dns|proxy|status [--dir DIR]  (DIR defaults to $SANDBOX_DIR or .sandbox)';

export function appCtl(argv: string[]): { code: number; out: string } {
  const args = [...argv];
  let dir = process.env.SANDBOX_DIR ?? DEFAULT_DIR;
  let scope: MaintenanceScope = 'all';
  const positional: string[] = [];
  while (args.length) {
    const a = args.shift()!;
    if (a === '--dir') dir = args.shift() ?? '';
    else if (a.startsWith('--dir=')) dir = a.slice(6);
    else if (a === '--scope' || a.startsWith('--scope=')) {
      const v = a === '--scope' ? args.shift() : a.slice(8);
      if (v !== 'all' && v !== 'web')
        return { code: 2, out: `app-ctl: --scope must be all or web\n${USAGE}` };
      scope = v;
    } else if (a === '-h' || a === '--help') return { code: 0, out: USAGE };
    else positional.push(a);
  }
  const [what, verb] = positional;
  if (what === 'db' && dir) {
    const file = dbRouteFile(resolve(dir));
    if (verb === 'status') return { code: 0, out: readDbRoute(file) };
    if (verb !== 'dns' && verb !== 'proxy') return { code: 2, out: USAGE };
    writeDbRoute(file, verb);
    return { code: 0, out: verb };
  }
  if (what !== 'maintenance' || !['on', 'off', 'status'].includes(verb ?? '') || !dir)
    return { code: 2, out: USAGE };
  const file = join(resolve(dir), 'app', 'maintenance.json');
  if (verb === 'status') return { code: 0, out: JSON.stringify(readMaintenance(file)) };
  const state = { enabled: verb === 'on', scope };
  writeMaintenance(file, state);
  return { code: 0, out: JSON.stringify(state) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { code, out } = appCtl(process.argv.slice(2));
  (code === 0 ? process.stdout : process.stderr).write(`${out}\n`);
  process.exitCode = code;
}
