import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resetJournalKeyCache } from '../../../src/journal/anchor.js';
import { Journal, readJournal, verifyJournal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cutover-journal-'));
  // The journal key of this test, not the developer's (~/.config/cutover/journal.key).
  process.env.XDG_CONFIG_HOME = join(dir, '.config');
  resetJournalKeyCache();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SHA = 'a'.repeat(64);
const file = () => join(dir, 'journal.jsonl');
const lines = () => readFileSync(file(), 'utf8').split('\n').filter(Boolean);

function write(n: number, secrets: string[] = []): Journal {
  const j = Journal.open(dir, SHA, new Redactor(secrets));
  j.append('run-start', {
    runId: 'r1',
    mode: 'run',
    runbook: { file: '/rb.yaml', name: 'rb', sha256: SHA },
    vars: {},
    steps: [],
  });
  for (let i = 2; i <= n; i++)
    j.append('step-start', { stepId: `s${i}`, kind: 'shell.run', inputs: { n: i } });
  return j;
}

describe('journal hash chain', () => {
  it('chains each record to the previous by sha256 of its own bytes', () => {
    write(4).close();
    const recs = readJournal(dir);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(recs[0]!.prev).toBe('0'.repeat(64));
    for (let i = 0; i < recs.length; i++) {
      const line = lines()[i]!;
      const body = `${line.slice(0, line.indexOf(',"hash":'))}}`;
      expect(createHash('sha256').update(body).digest('hex')).toBe(recs[i]!.hash);
      if (i > 0) expect(recs[i]!.prev).toBe(recs[i - 1]!.hash);
    }
    expect(recs[1]).toMatchObject({ type: 'step-start', stepId: 's2', runbookSha256: SHA, inputs: { n: 2 } });
    expect(recs[0]!.by).toMatch(/@/);
    expect(recs[0]!.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(verifyJournal(dir)).toMatchObject({ ok: true, records: 4, headHash: recs[3]!.hash });
  });

  it('continues the chain when reopened (resume)', () => {
    write(2).close();
    const j = Journal.open(dir, SHA, new Redactor());
    j.append('run-resume', {});
    j.close();
    const recs = readJournal(dir);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(recs[2]!.prev).toBe(recs[1]!.hash);
    expect(verifyJournal(dir).ok).toBe(true);
  });

  it('redacts before writing', () => {
    write(1, ['hunter2']).append('step-done', {
      stepId: 's',
      outputs: { stdout: 'pw hunter2' },
      durationMs: 1,
    });
    expect(readFileSync(file(), 'utf8')).not.toContain('hunter2');
    expect(readJournal(dir)[1]!.outputs).toEqual({ stdout: 'pw ***' });
    expect(verifyJournal(dir).ok).toBe(true);
  });

  const tamper: Record<string, (ls: string[]) => string[]> = {
    'edited value': (ls) => ls.map((l, i) => (i === 2 ? l.replace('"n":3', '"n":4') : l)),
    'removed line': (ls) => ls.filter((_l, i) => i !== 2),
    // A copy of line 2 inserted as line 3.
    'inserted copy': (ls) => [...ls.slice(0, 2), ls[1]!, ...ls.slice(2)],
    'reordered lines': (ls) => [ls[0]!, ls[1]!, ls[3]!, ls[2]!, ...ls.slice(4)],
    'recomputed hash of an edited line': (ls) =>
      ls.map((l, i) => {
        if (i !== 2) return l;
        const body = `${l.slice(0, l.indexOf(',"hash":')).replace('"n":3', '"n":4')}}`;
        return `${body.slice(0, -1)},"hash":"${createHash('sha256').update(body).digest('hex')}"}`;
      }),
  };

  it.each(Object.entries(tamper))(
    '%s breaks the chain at the first line that no longer fits',
    (what, mutate) => {
      write(5).close();
      writeFileSync(file(), `${mutate(lines()).join('\n')}\n`);
      const v = verifyJournal(dir);
      expect(v.ok).toBe(false);
      // A recomputed hash has no valid anchor MAC: the edited line itself fails.
      expect(v.badLine).toBe(3);
      expect(v.reason).toBeTruthy();
      if (what.startsWith('recomputed')) {
        expect(v.reason).toMatch(/anchor/);
        // Without the key the chain still breaks at the next line's link.
        expect(verifyJournal(dir, { key: null, expectHead: 'f'.repeat(64) })).toMatchObject({
          ok: false,
          badLine: 4,
        });
      }
    },
  );

  it('detects lines removed from the end through the head written at close', () => {
    write(5).close();
    writeFileSync(file(), `${lines().slice(0, 4).join('\n')}\n`);
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 5,
      reason: expect.stringMatching(/removed from the end/),
    });
  });

  it('a run killed before close (no head update) still verifies', () => {
    const j = write(3);
    j.close();
    const again = Journal.open(dir, SHA, new Redactor());
    again.append('run-resume', {}); // process dies here: no close, head still says 3
    expect(verifyJournal(dir)).toMatchObject({ ok: true, records: 4 });
  });

  it('an empty journal or a missing hash fails verify at line 1', () => {
    writeFileSync(file(), '');
    expect(verifyJournal(dir)).toMatchObject({ ok: false, badLine: 1 });
    writeFileSync(file(), '{"seq":1}\n');
    expect(verifyJournal(dir)).toMatchObject({
      ok: false,
      badLine: 1,
      reason: expect.stringMatching(/no hash/),
    });
  });

  it('readJournal ignores a torn last line (crash mid-write) but not a torn middle one', () => {
    write(3).close();
    writeFileSync(file(), `${readFileSync(file(), 'utf8')}{"seq":4,"ts":"20`);
    expect(readJournal(dir)).toHaveLength(3);
    expect(verifyJournal(dir)).toMatchObject({ ok: false, badLine: 4 });
    const ls = lines();
    writeFileSync(file(), `${[ls[0], '{"torn', ls[1]].join('\n')}\n`);
    expect(() => readJournal(dir)).toThrow(/journal.jsonl:2 is not valid JSON/);
  });
});

describe('journal after a crash mid-write', () => {
  it('reopening drops the torn last line so the chain continues cleanly', () => {
    write(3).close();
    writeFileSync(file(), `${readFileSync(file(), 'utf8')}{"seq":4,"ts":"20`);
    const j = Journal.open(dir, SHA, new Redactor());
    j.append('run-resume', {});
    j.close();
    const recs = readJournal(dir);
    expect(recs.map((r) => [r.seq, r.type])).toEqual([
      [1, 'run-start'],
      [2, 'step-start'],
      [3, 'step-start'],
      [4, 'run-resume'],
    ]);
    expect(verifyJournal(dir)).toMatchObject({ ok: true, records: 4 });
  });
});
