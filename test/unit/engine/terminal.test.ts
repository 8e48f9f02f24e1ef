// The renderers engine events go through: plain (logs, CI), json (scripts), tty (live list).
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../../src/engine/events.js';
import { createRenderer, runDirLine } from '../../../src/report/terminal.js';

function sink(isTTY = false) {
  let text = '';
  return {
    out: { write: (s: string) => (text += s), isTTY, columns: 120 },
    text: () => text,
    // Without colours and cursor movement.
    plain: () => text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''),
  };
}

const run: EngineEvent[] = [
  {
    type: 'run-start',
    runId: 'r',
    runDir: '/runs/r',
    mode: 'run',
    runbook: 'rb.yaml',
    steps: [
      { id: 'enter', kind: 'maintenance.enter' },
      { id: 'flip', kind: 'aws.route53.flip' },
    ],
    budgetMs: 600_000,
    resumed: false,
  },
  { type: 'step', stepId: 'enter', state: 'checking' },
  { type: 'step', stepId: 'enter', state: 'running', attempt: 1 },
  { type: 'maintenance', state: 'entered', elapsedMs: 0, budgetMs: 600_000 },
  { type: 'step', stepId: 'enter', state: 'done', durationMs: 1200 },
  { type: 'step', stepId: 'flip', state: 'running', attempt: 1 },
  { type: 'progress', stepId: 'flip', label: 'waiting for INSYNC', deadline: Date.now() + 60_000 },
  { type: 'progress', stepId: 'flip', label: 'waiting for INSYNC', deadline: Date.now() + 59_000 },
  { type: 'step', stepId: 'flip', state: 'retrying', attempt: 1, error: { code: 'X', message: 'throttled' } },
  { type: 'step', stepId: 'flip', state: 'running', attempt: 2 },
  { type: 'log', stepId: 'flip', level: 'warn', message: 'slow DNS' },
  { type: 'step', stepId: 'flip', state: 'done', durationMs: 3400 },
  { type: 'point-of-no-return', stepId: 'flip' },
  {
    type: 'run-end',
    status: 'succeeded',
    exitCode: 0,
    durationMs: 5000,
    message: 'cutover complete',
    leftovers: [],
    maintenanceMs: 4600,
  },
];

describe('plain renderer', () => {
  it('one timestamped line per change, no per-poll noise', () => {
    const s = sink();
    const r = createRenderer('plain', s.out);
    for (const e of run) r.emit(e);
    r.close();
    const lines = s.text().trimEnd().split('\n');
    for (const l of lines) expect(l).toMatch(/^\d\d:\d\d:\d\d\.\d{3} /);
    const body = lines.map((l) => l.slice(13));
    expect(body).toEqual([
      'run rb.yaml: 2 steps, run dir /runs/r, maintenance budget 10m',
      '[enter] checking',
      '[enter] running',
      'maintenance entered at 00:00 of 10:00 budget',
      '[enter] done in 1.2s',
      '[flip] running',
      expect.stringMatching(/^\[flip\] … waiting for INSYNC \(.*\d+(\.\d)?s\)$/),
      '[flip] retrying: throttled',
      '[flip] running (attempt 2)',
      '[flip] warn: slow DNS',
      '[flip] done in 3.4s',
      'point of no return passed at "flip"',
      'succeeded (exit 0) in 5.0s, maintenance 4.6s: cutover complete',
      // /runs is not ./runs: the hint names it, so --last finds this run.
      'run dir /runs/r — see it again: cutover status --last --runs-dir /runs · cutover report --last --runs-dir /runs --format html -o report.html',
    ]);
    expect(s.text()).not.toMatch(/\x1b\[/);
  });

  it('the last line names the run dir; --last needs no --runs-dir for the default one', () => {
    const prev = process.env.CUTOVER_RUNS_DIR;
    delete process.env.CUTOVER_RUNS_DIR;
    try {
      expect(runDirLine('runs/20261201T000000Z-x-abc')).toBe(
        'run dir runs/20261201T000000Z-x-abc — see it again: cutover status --last · cutover report --last --format html -o report.html',
      );
      expect(runDirLine('/tmp/my runs/r1')).toContain("cutover status --last --runs-dir '/tmp/my runs'");
    } finally {
      if (prev !== undefined) process.env.CUTOVER_RUNS_DIR = prev;
    }
  });

  it('lists what needs a human at the end', () => {
    const s = sink();
    const r = createRenderer('plain', s.out);
    r.emit({
      type: 'run-end',
      status: 'rollback-incomplete',
      exitCode: 3,
      durationMs: 10,
      message: 'Rollback incomplete',
      leftovers: [
        {
          stepId: 'fence',
          kind: 'aws.security-group.restrict',
          problem: 'undo failed: throttled',
          change: ['would revoke a', 'would authorize b'],
        },
      ],
    });
    expect(s.text()).toMatch(
      /needs a human: \[fence\] aws.security-group.restrict: undo failed: throttled — would revoke a; would authorize b/,
    );
  });
});

describe('json renderer', () => {
  it('one JSON event per line, exactly the events', () => {
    const s = sink();
    const r = createRenderer('json', s.out);
    for (const e of run) r.emit(e);
    expect(
      s
        .text()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(JSON.parse(JSON.stringify(run)));
  });
});

describe('tty renderer', () => {
  it('draws the live list with states, the maintenance clock, and leaves the final list and summary', () => {
    const s = sink(true);
    const r = createRenderer('tty', s.out);
    for (const e of run) r.emit(e);
    r.close();
    const out = s.plain();
    expect(out).toContain('Run rb.yaml → /runs/r');
    expect(out).toMatch(/✔ enter\s+maintenance\.enter\s+1\.2s/);
    expect(out).toMatch(/✔ flip\s+aws\.route53\.flip\s+3\.4s/);
    expect(out).toMatch(/maintenance 00:0\d \/ 10:00 budget/);
    expect(out).toContain('⚑ point of no return passed at flip');
    expect(out).toMatch(
      /succeeded \(exit 0\) in 5\.0s, maintenance 4\.6s of 10m budget\ncutover complete\nrun dir \/runs\/r — see it again: cutover status --last --runs-dir \/runs · cutover report --last --runs-dir \/runs --format html -o report\.html\n$/,
    );
    // It redraws in place: cursor-up + clear sequences.
    expect(s.text()).toMatch(/\x1b\[\d+A\x1b\[0J/);
  });

  it('shows the current wait while a step runs', () => {
    const s = sink(true);
    const r = createRenderer('tty', s.out);
    r.emit(run[0]!);
    r.emit({ type: 'step', stepId: 'flip', state: 'running', attempt: 1 });
    r.emit({
      type: 'progress',
      stepId: 'flip',
      label: 'replica lag 3.2s > 1s',
      deadline: Date.now() + 30_000,
    });
    r.emit({ type: 'log', level: 'info', message: 'tick' }); // forces a redraw
    r.close();
    expect(s.plain()).toMatch(/flip\s+aws\.route53\.flip\s+\S*\s+replica lag 3\.2s > 1s \(00:(29|30) left\)/);
  });
});
