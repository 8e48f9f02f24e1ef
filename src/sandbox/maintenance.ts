// The demo app's maintenance switch is a file, read on every request, so a plain shell command (or
// a runbook step on an "app host") can flip it without talking to the app.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type MaintenanceScope, type MaintenanceState, SEED_MAINTENANCE } from './config.js';

export function parseMaintenance(text: string): MaintenanceState {
  const raw = JSON.parse(text) as Partial<MaintenanceState>;
  const scope: MaintenanceScope = raw.scope === 'web' ? 'web' : 'all';
  return { enabled: raw.enabled === true, scope };
}

/**
 * Missing file: not in maintenance. Unreadable or malformed file: in maintenance for everything,
 * because an operator who meant to switch it on must not find customers writing meanwhile.
 */
export function readMaintenance(file: string): MaintenanceState {
  if (!existsSync(file)) return { ...SEED_MAINTENANCE };
  try {
    return parseMaintenance(readFileSync(file, 'utf8'));
  } catch {
    return { enabled: true, scope: 'all' };
  }
}

export function writeMaintenance(file: string, state: MaintenanceState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify({ enabled: state.enabled, scope: state.scope })}\n`);
  renameSync(tmp, file);
}

/** A one-line POSIX shell command with the same effect as writeMaintenance. */
export function maintenanceShellCommand(file: string, state: MaintenanceState): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const json = JSON.stringify({ enabled: state.enabled, scope: state.scope });
  return `printf '%s\\n' ${q(json)} > ${q(`${file}.tmp`)} && mv ${q(`${file}.tmp`)} ${q(file)}`;
}

/** How the demo app reaches MySQL: `dns` (the name the DNS flip moves; the seed) or `proxy` (HAProxy). */
export type DbRoute = 'dns' | 'proxy';

export function readDbRoute(file: string | undefined): DbRoute {
  if (!file || !existsSync(file)) return 'dns';
  try {
    return readFileSync(file, 'utf8').trim() === 'proxy' ? 'proxy' : 'dns';
  } catch {
    return 'dns';
  }
}

export function writeDbRoute(file: string, route: DbRoute): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${route}\n`);
  renameSync(tmp, file);
}
