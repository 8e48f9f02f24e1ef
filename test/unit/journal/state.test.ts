// State reconstruction from journal records alone: what resume, rollback and status work from.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../../src/journal/journal.js';
import { acquireLock } from '../../../src/journal/lock.js';
import { reconstruct } from '../../../src/journal/state.js';

let seq = 0;
function rec(type: string, data: Record<string, unknown> = {}): JournalRecord {
  seq++;
  return {
    seq,
    ts: `2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`,
    type,
    by: 'op@host',
    runbookSha256: 'x',
    prev: '',
    hash: '',
    ...data,
  };
}

function start(steps = ['a', 'b', 'c'], extra: Record<string, unknown> = {}): JournalRecord {
  seq = 0;
  return rec('run-start', {
    runId: 'run-1',
    mode: 'run',
    runbook: { file: '/rb.yaml', name: 'rb', sha256: 'abc' },
    vars: { x: '1' },
    budgetMs: 60_000,
    steps: steps.map((id) => ({ id, kind: 'shell.run' })),
    ...extra,
  });
}

function done(id: string, outputs: Record<string, unknown> = {}): JournalRecord[] {
  return [
    rec('step-start', { stepId: id }),
    rec('snapshot', { stepId: id, snapshot: { before: id } }),
    rec('step-done', { stepId: id, outputs, durationMs: 5 }),
  ];
}

describe('reconstruct', () => {
  it('a finished run: every step done with its outputs, the end recorded', () => {
    const s = reconstruct([
      start(),
      ...done('a', { v: 1 }),
      ...done('b'),
      ...done('c'),
      rec('run-end', { status: 'succeeded', exitCode: 0, message: 'ok' }),
    ]);
    expect(s).toMatchObject({
      runId: 'run-1',
      runbookFile: '/rb.yaml',
      runbookName: 'rb',
      runbookSha256: 'abc',
      mode: 'run',
      vars: { x: '1' },
      by: 'op@host',
      stepOrder: ['a', 'b', 'c'],
    });
    expect([...s.steps.values()].map((x) => x.status)).toEqual(['done', 'done', 'done']);
    expect(s.steps.get('a')).toMatchObject({
      outputs: { v: 1 },
      snapshot: { before: 'a' },
      applyStarted: true,
      durationMs: 5,
    });
    expect(s.end).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(s.maintenance.budgetMs).toBe(60_000);
  });

  it('a crash mid-step: that step in flight, apply started only once its snapshot is journaled', () => {
    const beforeSnapshot = reconstruct([start(), ...done('a'), rec('step-start', { stepId: 'b' })]);
    expect(beforeSnapshot.steps.get('b')).toMatchObject({ status: 'in-flight', applyStarted: false });
    expect(beforeSnapshot.end).toBeUndefined();
    const afterSnapshot = reconstruct([
      start(),
      ...done('a'),
      rec('step-start', { stepId: 'b' }),
      rec('snapshot', { stepId: 'b', snapshot: null }),
    ]);
    expect(afterSnapshot.steps.get('b')).toMatchObject({
      status: 'in-flight',
      applyStarted: true,
      snapshot: null,
    });
    expect(afterSnapshot.steps.get('c')!.status).toBe('pending');
  });

  it('a failure rolled back: failed step with its error, the others undone, remembering how far they got', () => {
    const s = reconstruct([
      start(),
      ...done('a'),
      ...done('b'),
      rec('step-start', { stepId: 'c' }),
      rec('step-failed', { stepId: 'c', error: { code: 'X', message: 'boom' }, applied: true }),
      rec('rollback-start', { reason: 'r', steps: ['b', 'a'] }),
      rec('undo-start', { stepId: 'b' }),
      rec('undo-done', { stepId: 'b' }),
      rec('undo-start', { stepId: 'a' }),
      rec('undo-failed', { stepId: 'a', error: { code: 'Y', message: 'undo broke' } }),
      rec('run-end', { status: 'rollback-incomplete', exitCode: 3 }),
    ]);
    expect(s.steps.get('c')).toMatchObject({
      status: 'failed',
      error: { code: 'X', message: 'boom' },
      applied: true,
    });
    expect(s.steps.get('b')).toMatchObject({ status: 'undone', ranTo: 'done' });
    expect(s.steps.get('a')).toMatchObject({
      status: 'undo-failed',
      ranTo: 'done',
      error: { message: 'undo broke' },
    });
    expect(s.end).toMatchObject({ status: 'rollback-incomplete', exitCode: 3 });
  });

  it('remembers that a rollback began, even when the process died during it', () => {
    const s = reconstruct([
      start(),
      ...done('a'),
      rec('step-failed', { stepId: 'b', error: { code: 'X', message: 'x' } }),
      rec('rollback-start', { reason: 'r', steps: ['a'] }),
      rec('undo-start', { stepId: 'a' }),
    ]);
    expect(s.rollbackStartedAt).toBeDefined();
    expect(s.end).toBeUndefined();
    expect(s.steps.get('a')).toMatchObject({ status: 'done', ranTo: 'done' });
    expect(reconstruct([start(), ...done('a')]).rollbackStartedAt).toBeUndefined();
  });

  it('a second rollback attempt keeps what the step originally ran to', () => {
    const s = reconstruct([
      start(['a']),
      ...done('a'),
      rec('undo-start', { stepId: 'a' }),
      rec('undo-failed', { stepId: 'a', error: { code: 'Y', message: 'no' } }),
      rec('undo-start', { stepId: 'a' }),
    ]);
    expect(s.steps.get('a')).toMatchObject({ status: 'undo-failed', ranTo: 'done' });
  });

  it('a paused gate, then a resume: the pause is cleared, the run is open again', () => {
    const paused = [
      start(),
      ...done('a'),
      rec('gate', { stepId: 'b', decision: 'needs-approval' }),
      rec('run-end', { status: 'paused', exitCode: 3 }),
    ];
    expect(reconstruct(paused)).toMatchObject({ gatePending: 'b', end: { status: 'paused' } });
    const resumed = reconstruct([
      ...paused,
      rec('run-resume'),
      rec('gate', { stepId: 'b', decision: 'approved' }),
      rec('step-start', { stepId: 'b' }),
    ]);
    expect(resumed.gatePending).toBeUndefined();
    expect(resumed.end).toBeUndefined();
    expect(resumed.steps.get('b')!.status).toBe('in-flight');
  });

  it('records the point of no return and the maintenance window', () => {
    const s = reconstruct([
      start(),
      ...done('a'),
      rec('maintenance', { state: 'entered' }),
      ...done('b'),
      rec('point-of-no-return', { stepId: 'b' }),
      rec('maintenance', { state: 'exited', elapsedMs: 1234 }),
    ]);
    expect(s.pointOfNoReturn).toBe('b');
    expect(s.maintenance).toMatchObject({
      enteredAt: expect.any(String),
      exitedAt: expect.any(String),
      budgetMs: 60_000,
    });
    expect(s.lastTs).toBe(`2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`);
  });

  it('a resumed step that ran again: a fresh start clears the old error', () => {
    const s = reconstruct([
      start(['a']),
      rec('step-start', { stepId: 'a' }),
      rec('step-failed', { stepId: 'a', error: { code: 'X', message: 'first' } }),
      rec('run-resume'),
      rec('step-start', { stepId: 'a', resumed: true }),
    ]);
    expect(s.steps.get('a')).toMatchObject({ status: 'in-flight' });
    expect(s.steps.get('a')!.error).toBeUndefined();
  });

  it('ignores records of steps the run does not have, and refuses a journal without run-start', () => {
    expect(() => reconstruct([start(['a']), rec('step-done', { stepId: 'zzz' })])).not.toThrow();
    expect(() => reconstruct([rec('step-start', { stepId: 'a' })])).toThrow(/no run-start/);
  });
});

describe('lock', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('one holder at a time; the error names the holder; release frees it', () => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-lock-'));
    const release = acquireLock(dir, 'rb-target', '/runs/one');
    expect(() => acquireLock(dir!, 'rb-target', '/runs/two')).toThrow(
      new RegExp(
        `another run holds the lock for rb-target: .*\\(pid ${process.pid} on ${hostname()}\\).*run dir /runs/one`,
      ),
    );
    // Another key is another target: no conflict.
    acquireLock(dir, 'rb-other', '/runs/three')();
    release();
    acquireLock(dir, 'rb-target', '/runs/two')();
  });

  it('takes over a lock whose process is gone, or that was half-written', () => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-lock-'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(
      join(dir, 'rb.lock'),
      JSON.stringify({ pid: dead, host: hostname(), by: 'x', runDir: '/r', since: 'then' }),
    );
    acquireLock(dir, 'rb', '/runs/new')();
    writeFileSync(join(dir, 'rb.lock'), '{"pid":');
    acquireLock(dir, 'rb', '/runs/new')();
  });

  it('a lock held from another host is never taken over (its pid means nothing here)', () => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-lock-'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(
      join(dir, 'rb.lock'),
      JSON.stringify({ pid: dead, host: 'elsewhere', by: 'x', runDir: '/r', since: 'then' }),
    );
    expect(() => acquireLock(dir!, 'rb', '/runs/new')).toThrow(/on elsewhere/);
  });
});
