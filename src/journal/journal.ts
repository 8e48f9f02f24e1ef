// Append-only JSONL journal, one fsync'd record per line, chained by sha256: each line's hash covers
// its exact bytes (minus the hash field) including the previous line's hash, so any edited, removed,
// inserted or reordered line breaks the chain at that line.
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { CutoverError, ExitCode } from '../errors.js';
import type { EntryData, RecordType } from './records.js';
import type { Redactor } from './redact.js';

export const JOURNAL_FILE = 'journal.jsonl';
/** `<seq> <hash>` of the last record written when the journal was closed: a removed last line shows. */
export const HEAD_FILE = 'journal.head';
const GENESIS = '0'.repeat(64);
const HASH_TAIL = /,"hash":"([0-9a-f]{64})"\}$/;

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
  ) {
    this.seq = last?.seq ?? 0;
    this.prev = last?.hash ?? GENESIS;
  }

  /** Opens (creating if needed) a run's journal for appending, continuing its chain. */
  static open(runDir: string, runbookSha256: string, redactor: Redactor): Journal {
    const path = join(runDir, JOURNAL_FILE);
    dropTornTail(path);
    const existing = existsSync(path) ? readJournal(runDir) : [];
    const last = existing.at(-1);
    const fd = openSync(path, 'a');
    return new Journal(
      path,
      fd,
      runbookSha256,
      redactor,
      last ? { seq: last.seq, hash: last.hash } : undefined,
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
    const line = `${json.slice(0, -1)},"hash":"${hash}"}\n`;
    writeSync(this.fd, line);
    // fdatasync: the record must be on disk before the change it announces is made.
    fdatasyncSync(this.fd);
    this.seq += 1;
    this.prev = hash;
    return { ...body, hash } as JournalRecord;
  }

  close(): void {
    try {
      // The chain alone cannot tell a journal whose last records were cut off from a shorter one.
      if (this.seq > 0) {
        const headPath = join(dirname(this.path), HEAD_FILE);
        writeFileSync(headPath, `${this.seq} ${this.prev}\n`);
      }
    } catch {
      // best effort: verify still checks the chain
    }
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
    text = readFileSync(path, 'utf8');
  } catch {
    return;
  }
  if (text === '' || text.endsWith('\n')) return;
  truncateSync(path, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
}

export function readJournal(runDir: string): JournalRecord[] {
  const path = join(runDir, JOURNAL_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
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

function readHead(runDir: string): { seq: number; hash: string } | undefined {
  try {
    const m = /^(\d+) ([0-9a-f]{64})\s*$/.exec(readFileSync(join(runDir, HEAD_FILE), 'utf8'));
    return m ? { seq: Number(m[1]), hash: m[2]! } : undefined;
  } catch {
    return undefined;
  }
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  /** 1-based line number of the first line that breaks the chain. */
  badLine?: number;
  reason?: string;
  headHash?: string;
}

export function verifyJournal(runDir: string): VerifyResult {
  const path = join(runDir, JOURNAL_FILE);
  const text = readFileSync(path, 'utf8');
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
    prev = m[1]!;
    hashes.push(prev);
  }
  if (lines.length === 0) return { ok: false, records: 0, badLine: 1, reason: 'journal is empty' };
  const head = readHead(runDir);
  if (head && head.seq > lines.length)
    return {
      ok: false,
      records: lines.length,
      badLine: lines.length + 1,
      reason: `line ${lines.length + 1} is missing: ${HEAD_FILE} records ${head.seq} records, the journal ends at ${lines.length} (lines were removed from the end)`,
    };
  if (head && hashes[head.seq - 1] !== head.hash)
    return {
      ok: false,
      records: lines.length,
      badLine: head.seq,
      reason: `does not match the head hash recorded in ${HEAD_FILE}`,
    };
  return { ok: true, records: lines.length, headHash: prev };
}
