// Append-only JSONL journal, one fsync'd record per line, chained by sha256: each line's hash covers
// its exact bytes (minus the hash field) including the previous line's hash, so any edited, removed,
// inserted or reordered line breaks the chain at that line.
import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fdatasyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { CutoverError, ExitCode } from '../errors.js';
import { checkMac, type JournalKey, journalKey, macOf } from './anchor.js';
import { HEAD_FILE, JOURNAL_FILE } from './files.js';
import type { EntryData, RecordType } from './records.js';
import type { Redactor } from './redact.js';

const GENESIS = '0'.repeat(64);
// The anchor MAC sits after the hash, outside what the hash covers: the chain is computed as before.
const HASH_TAIL = /,"hash":"([0-9a-f]{64})"(?:,"mac":"([^"\\]*)")?\}$/;

/** Refuses a run file that is a symlink: rollback once overwrote a link's target. */
function refuseLink(path: string): void {
  let link = false;
  try {
    link = lstatSync(path).isSymbolicLink();
  } catch {
    return; // absent
  }
  if (link)
    throw new CutoverError(
      'JOURNAL_SYMLINK',
      `${path} is a symbolic link; a run's journal files are never followed through links. Replace it with the real file (or restore the run directory from a trusted copy)`,
      { exitCode: ExitCode.badInput },
    );
}

/** Reads a run file without following a link (O_NOFOLLOW: no race between a check and the open). */
function readNoFollow(path: string): string {
  refuseLink(path);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Replaces a run file atomically, 0600, never writing through a link (rename replaces the link itself). */
export function writeRunFile(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface JournalRecord {
  seq: number;
  ts: string;
  type: string;
  stepId?: string;
  by: string;
  runbookSha256: string;
  prev: string;
  hash: string;
  [key: string]: unknown;
}

export function operator(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // containers without a passwd entry for the uid
  }
  return `${user}@${hostname()}`;
}

export class Journal {
  private seq: number;
  private prev: string;
  private readonly by = operator();

  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly runbookSha256: string,
    private readonly redactor: Redactor,
    last: { seq: number; hash: string } | undefined,
    private readonly key: JournalKey,
  ) {
    this.seq = last?.seq ?? 0;
    this.prev = last?.hash ?? GENESIS;
  }

  /** Opens (creating if needed) a run's journal for appending, continuing its chain. */
  static open(
    runDir: string,
    runbookSha256: string,
    redactor: Redactor,
    key: JournalKey = journalKey({ create: true })!,
  ): Journal {
    const path = join(runDir, JOURNAL_FILE);
    refuseLink(path);
    refuseLink(join(runDir, HEAD_FILE));
    dropTornTail(path);
    const existing = existsSync(path) ? readJournal(runDir) : [];
    const last = existing.at(-1);
    const fd = openSync(
      path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
      0o600,
    );
    return new Journal(
      path,
      fd,
      runbookSha256,
      redactor,
      last ? { seq: last.seq, hash: last.hash } : undefined,
      key,
    );
  }

  /** Only record types of the union in records.ts: the journal's schema is checked by the compiler. */
  append<T extends RecordType>(type: T, data: EntryData<T>): JournalRecord {
    const { stepId, ...rest } = this.redactor.value(data as Record<string, unknown>);
    const body: Omit<JournalRecord, 'hash'> = {
      seq: this.seq + 1,
      ts: new Date().toISOString(),
      type,
      ...(stepId !== undefined ? { stepId: stepId as string } : {}),
      by: this.by,
      runbookSha256: this.runbookSha256,
      ...rest,
      prev: this.prev,
    };
    const json = JSON.stringify(body);
    const hash = createHash('sha256').update(json).digest('hex');
    const mac = macOf(this.key, this.seq + 1, hash);
    const line = `${json.slice(0, -1)},"hash":"${hash}","mac":"${mac}"}\n`;
    writeSync(this.fd, line);
    // fdatasync: the record must be on disk before the change it announces is made.
    fdatasyncSync(this.fd);
    this.seq += 1;
    this.prev = hash;
    // The chain alone cannot tell a journal whose last records were cut off from a shorter one:
    // the head follows every record (a crash between the two leaves it one behind, which verify allows).
    writeRunFile(
      join(dirname(this.path), HEAD_FILE),
      `${this.seq} ${hash} ${macOf(this.key, this.seq, hash, 'head')}\n`,
    );
    return { ...body, hash, mac } as unknown as JournalRecord;
  }

  /** The last record's seq and hash: what to publish so the run can be checked without the key. */
  head(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.prev };
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

/**
 * A crash mid-write can leave a last line without its newline. That record was never complete
 * (its fsync had not returned, so the change it announced was not made): cut it off, or the next
 * record would be glued to it and corrupt the journal for good.
 */
function dropTornTail(path: string): void {
  let text: string;
  try {
    text = readNoFollow(path);
  } catch {
    return;
  }
  if (text === '' || text.endsWith('\n')) return;
  truncateSync(path, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
}

export function readJournal(runDir: string): JournalRecord[] {
  const path = join(runDir, JOURNAL_FILE);
  let text: string;
  refuseLink(path);
  try {
    text = readNoFollow(path);
  } catch {
    throw new CutoverError('NO_JOURNAL', `${runDir}: no ${JOURNAL_FILE} here — is this a run directory?`, {
      exitCode: ExitCode.badInput,
    });
  }
  const out: JournalRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as JournalRecord);
    } catch {
      // A torn last line (crash mid-write) is ignored; verify reports it.
      if (i < lines.length - 2)
        throw new CutoverError(
          'JOURNAL_CORRUPT',
          `${path}:${i + 1} is not valid JSON (run \`cutover log verify\`)`,
          {
            exitCode: ExitCode.badInput,
          },
        );
    }
  }
  return out;
}

type Head = { seq: number; hash: string; mac?: string } | 'absent' | 'malformed';

function readHead(runDir: string): Head {
  let text: string;
  try {
    text = readNoFollow(join(runDir, HEAD_FILE));
  } catch (e) {
    if (e instanceof CutoverError) throw e;
    return 'absent';
  }
  const m = /^(\d+) ([0-9a-f]{64})(?: (\S+))?\s*$/.exec(text);
  if (!m) return 'malformed';
  return { seq: Number(m[1]), hash: m[2]!, ...(m[3] ? { mac: m[3] } : {}) };
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  /** 1-based line number of the first line that breaks the chain. */
  badLine?: number;
  reason?: string;
  headHash?: string;
  /** How the head was anchored: the journal key (its id), the published head, or both. */
  anchor?: string;
  /** The chain and head are whole, but no key (nor --expect-head) was at hand to check the anchor. */
  unanchored?: boolean;
}

export interface VerifyOptions {
  /** The journal key; default: this host's (never created by a reader). `null`: check without one. */
  key?: JournalKey | null;
  /** A head hash published at the time of the run (report, notification): the chain must end there. */
  expectHead?: string;
}

/**
 * Checks the chain, then its anchor: every record's MAC under the journal key (or, without the
 * key, the head published elsewhere), and journal.head, which stops the journal being cut short.
 */
export function verifyJournal(runDir: string, opts: VerifyOptions = {}): VerifyResult {
  const path = join(runDir, JOURNAL_FILE);
  const text = readNoFollow(path);
  const key = opts.key === undefined ? journalKey({ create: false }) : opts.key;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let prev = GENESIS;
  const hashes: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const bad = (reason: string): VerifyResult => ({ ok: false, records: i, badLine: i + 1, reason });
    const m = HASH_TAIL.exec(line);
    if (!m) return bad('no hash field at the end of the line');
    const body = `${line.slice(0, m.index)}}`;
    if (createHash('sha256').update(body).digest('hex') !== m[1])
      return bad('content does not match its hash (edited)');
    let rec: JournalRecord;
    try {
      rec = JSON.parse(line) as JournalRecord;
    } catch {
      return bad('not valid JSON');
    }
    if (rec.prev !== prev)
      return bad('previous-hash link broken (a line was removed, inserted or reordered before it)');
    if (rec.seq !== i + 1) return bad(`sequence number ${rec.seq}, expected ${i + 1}`);
    if (key) {
      const c = checkMac(key, rec.seq, m[1]!, m[2]);
      if (!c.ok) return bad(c.why);
    }
    prev = m[1]!;
    hashes.push(prev);
  }
  const n = lines.length;
  if (n === 0) return { ok: false, records: 0, badLine: 1, reason: 'journal is empty' };
  const fail = (badLine: number, reason: string): VerifyResult => ({
    ok: false,
    records: n,
    badLine,
    reason,
  });
  const head = readHead(runDir);
  if (head === 'absent')
    return fail(n, `${HEAD_FILE} is missing (removed?): the end of the journal cannot be checked`);
  if (head === 'malformed') return fail(n, `${HEAD_FILE} is not "<seq> <hash> <mac>"`);
  if (head.seq > n)
    return fail(
      n + 1,
      `line ${n + 1} is missing: ${HEAD_FILE} records ${head.seq} records, the journal ends at ${n} (lines were removed from the end)`,
    );
  // One record past the head: a crash between writing a record and the head. More: appended.
  if (head.seq < n - 1)
    return fail(
      head.seq + 1,
      `records after line ${head.seq}, where ${HEAD_FILE} says the journal ends (appended)`,
    );
  if (hashes[head.seq - 1] !== head.hash)
    return fail(head.seq, `does not match the head hash recorded in ${HEAD_FILE}`);
  if (key) {
    const c = checkMac(key, head.seq, head.hash, head.mac, 'head');
    if (!c.ok) return fail(head.seq, `${HEAD_FILE}: ${c.why}`);
  }
  const anchors: string[] = [];
  if (key) anchors.push(`journal key ${key.id}`);
  if (opts.expectHead !== undefined) {
    if (opts.expectHead !== prev)
      return fail(n, `the journal ends at head ${prev}, not the expected ${opts.expectHead}`);
    anchors.push('expected head');
  }
  if (!anchors.length)
    return {
      ...fail(
        n,
        'no journal key on this host to check the anchor (CUTOVER_JOURNAL_KEY or ~/.config/cutover/journal.key): verify where the run was made, or pass --expect-head with the published head',
      ),
      headHash: prev,
      unanchored: true,
    };
  return { ok: true, records: n, headHash: prev, anchor: anchors.join(' + ') };
}
