// The journal's anchor: an HMAC over each record's hash with a key kept OUTSIDE the run directory.
// The hash chain alone shows accidental damage; anyone who can write the run directory can re-hash
// it. Without the key they cannot produce a record (or a head) that verifies.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { forgetEnvKey, takeKeyFromEnv } from './env-key.js';

export interface JournalKey {
  key: Buffer;
  /** Short public fingerprint, so a mismatch can say "made with another key" instead of "forged". */
  id: string;
  source: string;
}

export function keyFilePath(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'cutover', 'journal.key');
}

function make(key: Buffer, source: string): JournalKey {
  const id = createHash('sha256').update('cutover-journal-key-id\0').update(key).digest('hex').slice(0, 12);
  return { key, id, source };
}

function readKeyFile(path: string): Buffer {
  // O_NOFOLLOW: a key file swapped for a link to something else is refused, not read.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputError('JOURNAL_KEY', `${path}: not a regular file`);
    if (st.mode & 0o077)
      throw new InputError(
        'JOURNAL_KEY',
        `${path} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    if (typeof process.getuid === 'function' && st.uid !== process.getuid())
      throw new InputError('JOURNAL_KEY', `${path} is not owned by the current user; refusing to use it`);
    const text = readFileSync(fd, 'utf8').trim();
    if (text.length < 32) throw new InputError('JOURNAL_KEY', `${path}: key too short (want 32+ characters)`);
    return Buffer.from(text, 'utf8');
  } finally {
    closeSync(fd);
  }
}

let cached: JournalKey | undefined;

/**
 * The journal key: CUTOVER_JOURNAL_KEY, else the key file (created 0600 on first use when `create`).
 * Undefined when there is none and none may be created (a reader on another host).
 */
export function journalKey(opts: { create: boolean }): JournalKey | undefined {
  const envKey = takeKeyFromEnv();
  if (envKey !== undefined) {
    if (envKey.length < 32)
      throw new InputError('JOURNAL_KEY', 'CUTOVER_JOURNAL_KEY is too short (want 32+ characters)');
    return make(Buffer.from(envKey, 'utf8'), 'CUTOVER_JOURNAL_KEY');
  }
  const path = keyFilePath();
  if (cached?.source === path) return cached;
  try {
    lstatSync(path);
  } catch {
    if (!opts.create) return undefined;
    try {
      createKeyFile(path);
    } catch (e) {
      throw new InputError(
        'JOURNAL_KEY',
        `cannot create the journal key ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)}): set CUTOVER_JOURNAL_KEY (32+ characters) or XDG_CONFIG_HOME to a writable directory`,
      );
    }
  }
  cached = make(readKeyFile(path), path);
  return cached;
}

function createKeyFile(path: string): void {
  {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Written to a temp name then linked: a concurrent first run never reads a half-written key.
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}

/** Test hook: forget the cached key and env key (the next call reads again). */
export function resetJournalKeyCache(): void {
  cached = undefined;
  forgetEnvKey();
}

/**
 * A record's MAC and the head's are different messages (and formats): otherwise any record's own
 * MAC would make a valid head for a journal cut off after that record.
 */
export type MacKind = 'record' | 'head';
const FORMAT: Record<MacKind, string> = { record: 'v1', head: 'h1' };

export function macOf(key: JournalKey, seq: number, hash: string, kind: MacKind = 'record'): string {
  const msg =
    kind === 'head' ? `cutover-journal head v1 ${seq} ${hash}` : `cutover-journal v1 ${seq} ${hash}`;
  const mac = createHmac('sha256', key.key).update(msg).digest('hex');
  return `${FORMAT[kind]}:${key.id}:${mac}`;
}

export type MacCheck = { ok: true } | { ok: false; why: string };

export function checkMac(
  key: JournalKey,
  seq: number,
  hash: string,
  mac: unknown,
  kind: MacKind = 'record',
): MacCheck {
  if (typeof mac !== 'string')
    return { ok: false, why: 'no anchor MAC (written or re-hashed without the journal key)' };
  const [v, id] = mac.split(':');
  if (v !== FORMAT[kind])
    return {
      ok: false,
      why:
        kind === 'head' && v === 'v1'
          ? 'a record MAC where the head MAC belongs (the journal was cut off and its head rebuilt from a record)'
          : `unknown anchor format "${String(v).slice(0, 8)}"`,
    };
  if (id !== key.id)
    return {
      ok: false,
      why: `anchored with journal key ${id}, not this host's key ${key.id} (${key.source}): verify with the key the run was made with, or with --expect-head`,
    };
  return mac === macOf(key, seq, hash, kind)
    ? { ok: true }
    : { ok: false, why: 'anchor MAC does not match (forged or re-hashed without the journal key)' };
}
