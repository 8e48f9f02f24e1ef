// Crontab text, and the POSIX scripts that read and write it byte for byte. Disabling comments each
// job out behind a marker and enabling strips exactly that marker, so the two are exact opposites;
// undo does not rely on either: it writes back the bytes the snapshot holds.
import { sha256Hex } from '../../util/digest.js';
import { shq } from './common.js';

export const DEFAULT_MARKER = '#cutover-disabled# ';

/** A line cron would run: not blank, not a comment, not an environment assignment (MAILTO=...). */
export function isJobLine(line: string): boolean {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return false;
  if (/^[A-Za-z_][A-Za-z0-9_]*\s*=/.test(t)) return false;
  return true;
}

/** 1-based line numbers of active jobs (never the lines: they may hold tokens). */
export function activeJobLines(content: string): number[] {
  const out: number[] = [];
  content.split('\n').forEach((l, i) => {
    if (isJobLine(l)) out.push(i + 1);
  });
  return out;
}

export function disableJobs(content: string, marker = DEFAULT_MARKER): { content: string; changed: number } {
  let changed = 0;
  const lines = content.split('\n').map((l) => {
    if (!isJobLine(l)) return l;
    changed++;
    return marker + l;
  });
  return { content: lines.join('\n'), changed };
}

export function enableJobs(content: string, marker = DEFAULT_MARKER): { content: string; changed: number } {
  let changed = 0;
  const lines = content.split('\n').map((l) => {
    if (!l.startsWith(marker)) return l;
    changed++;
    return l.slice(marker.length);
  });
  return { content: lines.join('\n'), changed };
}

export function markedLines(content: string, marker = DEFAULT_MARKER): number[] {
  const out: number[] = [];
  content.split('\n').forEach((l, i) => {
    if (l.startsWith(marker)) out.push(i + 1);
  });
  return out;
}

// ---------------------------------------------------------------- file content in snapshots

/** Content as journaled: text when it is valid UTF-8 (readable in the journal), else base64. */
export interface Content {
  exists: boolean;
  text?: string;
  base64?: string;
  sha256?: string;
}

export function contentOf(bytes: Buffer | undefined): Content {
  if (!bytes) return { exists: false };
  const sha256 = sha256Hex(bytes);
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes)
    ? { exists: true, text, sha256 }
    : { exists: true, base64: bytes.toString('base64'), sha256 };
}

export function bytesOf(c: Content): Buffer | undefined {
  if (!c.exists) return undefined;
  const bytes = c.base64 !== undefined ? Buffer.from(c.base64, 'base64') : Buffer.from(c.text ?? '', 'utf8');
  // The snapshot's own digest: content edited in the journal is never written back to a host.
  if (c.sha256 !== undefined && sha256Hex(bytes) !== c.sha256) throw new SnapshotDigestError();
  return bytes;
}

export class SnapshotDigestError extends Error {
  readonly code = 'SNAPSHOT_DIGEST';
  constructor() {
    super(
      "a snapshot's content does not match its recorded sha256 (edited journal?); refusing to write it back",
    );
    this.name = 'SnapshotDigestError';
  }
}

export function sameContent(a: Content, b: Content): boolean {
  if (a.exists !== b.exists) return false;
  if (!a.exists) return true;
  return bytesOf(a)!.equals(bytesOf(b)!);
}

/** Text for the marker transforms; undefined when the content is not text (left untouched). */
export function textOf(c: Content): string | undefined {
  return c.exists ? c.text : undefined;
}

export function fromText(text: string): Content {
  return contentOf(Buffer.from(text, 'utf8'));
}

// ---------------------------------------------------------------- targets and their scripts

export type Target = { type: 'file'; path: string } | { type: 'crontab'; user?: string };

export function targetLabel(t: Target): string {
  if (t.type === 'file') return t.path;
  return t.user ? `the crontab of user ${t.user}` : 'the crontab';
}

function crontabCmd(user: string | undefined): string {
  return user ? `crontab -u ${shq(user)}` : 'crontab';
}

/**
 * Prints "present" then the content in base64, or "absent". Base64 because a shell pipe would
 * otherwise be read back as UTF-8 text, and `$(...)` drops trailing newlines.
 */
export function readScript(t: Target): string {
  if (t.type === 'file') {
    const p = shq(t.path);
    return `if [ -e ${p} ]; then echo present && base64 < ${p}; else echo absent; fi`;
  }
  const c = crontabCmd(t.user);
  // "no crontab for X" is an empty crontab; any other error (no crontab binary, no permission) fails.
  return [
    `command -v crontab >/dev/null 2>&1 || { echo 'crontab: command not found' >&2; exit 127; }`,
    `if err=$(${c} -l 2>&1 >/dev/null); then echo present && ${c} -l | base64; else case $err in *'no crontab'*) echo absent;; *) echo "$err" >&2; exit 1;; esac; fi`,
  ].join('\n');
}

/** Parses readScript's output. */
export function parseRead(stdout: string): Content | undefined {
  const nl = stdout.indexOf('\n');
  const head = (nl < 0 ? stdout : stdout.slice(0, nl)).trim();
  if (head === 'absent') return { exists: false };
  if (head !== 'present') return undefined;
  return contentOf(Buffer.from(stdout.slice(nl + 1).replace(/\s+/g, ''), 'base64'));
}

/**
 * Writes the base64 on stdin as the target's content, or removes it when `exists` is false. Files
 * are written to a copy (keeping mode and owner) then renamed over, so cron never reads half a
 * file; the copy's name holds a '.', which cron.d and run-parts ignore.
 */
export function writeScript(t: Target, exists: boolean): string {
  if (t.type === 'file') {
    const p = shq(t.path);
    if (!exists) return `rm -f -- ${p}`;
    return [
      `f=${p}; t="$f.cutover-tmp"`,
      `cp -p -- "$f" "$t" 2>/dev/null || : > "$t" || exit 1`,
      `if base64 -d > "$t"; then mv -f -- "$t" "$f"; else rm -f -- "$t"; exit 1; fi`,
    ].join('\n');
  }
  const c = crontabCmd(t.user);
  if (!exists) return `${c} -r 2>/dev/null || true`;
  return [
    `t=$(mktemp) || exit 1`,
    `if base64 -d > "$t" && ${c} "$t"; then rm -f -- "$t"; else rm -f -- "$t"; exit 1; fi`,
  ].join('\n');
}

export function timerUnit(name: string): string {
  return /\.(timer|service)$/.test(name) ? name : `${name}.timer`;
}

export const TIMER_RE = /^[A-Za-z0-9_][A-Za-z0-9@:._\\-]*$/;

/** Prints one "unit state" line per timer ("active", "inactive", "failed"...). */
export function timersStateScript(units: string[]): string {
  return units
    .map((u) => `printf '%s %s\\n' ${shq(u)} "$(systemctl is-active -- ${shq(u)} 2>/dev/null || true)"`)
    .join('\n');
}

export function parseTimerStates(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [unit, state] = line.trim().split(/\s+/);
    if (unit) m.set(unit, state || 'unknown');
  }
  return m;
}

const PS_MARK = 'pid=,args=';
export const PS_SCRIPT = `ps -eo ${PS_MARK}`;

/** `ps` lines that match a job pattern; the ps command's own lines (and its shells) never do. */
export function matchingProcesses(psOutput: string, pattern: RegExp): { pid: number; args: string }[] {
  const out: { pid: number; args: string }[] = [];
  for (const line of psOutput.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const args = m[2]!;
    if (args.includes(PS_MARK)) continue;
    if (pattern.test(args)) out.push({ pid: Number(m[1]), args });
  }
  return out;
}
