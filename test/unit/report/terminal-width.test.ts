// The live task list at 80 and 120 columns, on an emulated terminal that wraps long lines as a real
// one does: the final screen holds every step exactly once, however long its status line was.
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../../src/engine/events.js';
import { createRenderer, fitLine, visibleLength } from '../../../src/report/terminal.js';

/** Enough of a VT100 for the renderer: text with pending-wrap at the last column, \n, CUU, ED. */
class Screen {
  rows: string[][] = [[]];
  r = 0;
  c = 0;
  constructor(public width: number) {}
  write(s: string): void {
    for (let i = 0; i < s.length; ) {
      const esc = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(s.slice(i));
      if (esc) {
        const n = Number(esc[1] || '1');
        if (esc[2] === 'A') this.r = Math.max(0, this.r - n);
        if (esc[2] === 'J') {
          this.rows[this.r]!.length = this.c;
          this.rows.length = this.r + 1;
        }
        i += esc[0].length;
        continue;
      }
      const ch = String.fromCodePoint(s.codePointAt(i)!);
      i += ch.length;
      if (ch === '\n') {
        this.r++;
        this.c = 0;
      } else if (ch === '\r') this.c = 0;
      else {
        if (this.c >= this.width) {
          this.r++;
          this.c = 0;
        }
        this.rows[this.r] ??= [];
        this.rows[this.r]![this.c++] = ch;
      }
      this.rows[this.r] ??= [];
    }
  }
  text(): string[] {
    return this.rows.map((r) => r.join('').trimEnd());
  }
}

const STEPS = [
  'disable-crons',
  'check-lag',
  'enter-maintenance',
  'fence-old',
  'drain',
  'stop-replication',
  'flip-dns',
  'reverse-replication',
  'smoke',
  'exit-maintenance',
  'enable-crons',
];

function drive(width: number): string[] {
  const screen = new Screen(width);
  const out = { write: (s: string) => screen.write(s), isTTY: true, columns: width };
  const r = createRenderer('tty', out);
  const events: EngineEvent[] = [
    {
      type: 'run-start',
      runId: 'r',
      runDir: '/runs/r',
      mode: 'run',
      runbook: 'runbooks/sandbox.yaml',
      steps: STEPS.map((id) => ({ id, kind: 'some.kind' })),
      budgetMs: 120_000,
      resumed: false,
    },
  ];
  for (const id of STEPS) {
    events.push({ type: 'step', stepId: id, state: 'checking' });
    events.push({ type: 'step', stepId: id, state: 'running', attempt: 1 });
    if (id === 'enter-maintenance') events.push({ type: 'maintenance', state: 'entered', elapsedMs: 0 });
    // Status lines longer than any terminal: the case that left copies behind.
    for (let k = 0; k < 3; k++)
      events.push({
        type: 'progress',
        stepId: id,
        label: `Route 53 change /change/C${k} (flip of db.sandbox.internal. CNAME in zone Z0SANDBOX0001) INSYNC — PENDING, 127.0.0.1:53053 → old.sandbox.internal.`,
        deadline: Date.now() + 60_000,
      });
    events.push({
      type: 'log',
      stepId: id,
      level: 'info',
      message: `${id}: a log line that stays above the list`,
    });
    events.push({ type: 'step', stepId: id, state: 'done', durationMs: 800, note: 'x'.repeat(150) });
  }
  events.push({
    type: 'run-end',
    status: 'succeeded',
    exitCode: 0,
    durationMs: 9000,
    message: 'cutover complete',
    leftovers: [],
    maintenanceMs: 7000,
  });
  for (const e of events) r.emit(e);
  r.close();
  return screen.text();
}

describe('tty renderer: lines fit the terminal', () => {
  it.each([80, 120])('at %i columns each step is on the final screen exactly once', (width) => {
    const screen = drive(width);
    for (const id of STEPS) {
      const rows = screen.filter((l) => new RegExp(`^\\S+ ${id} `).test(l));
      expect(rows, `${id}:\n${screen.join('\n')}`).toHaveLength(1);
    }
    // No row of the list was wrapped into the next.
    expect(screen.filter((l) => /^x+/.test(l))).toEqual([]);
    expect(screen.some((l) => /^maintenance 00:\d\d \/ 02:00 budget/.test(l))).toBe(true);
  });

  it('fitLine cuts by visible columns, keeps escape sequences, ends on an ellipsis and a reset', () => {
    const coloured = `\x1b[32m✔\x1b[39m ${'a'.repeat(100)}\x1b[2m ${'b'.repeat(50)}\x1b[22m`;
    const cut = fitLine(coloured, 80);
    expect(visibleLength(cut)).toBe(79);
    expect(cut.startsWith('\x1b[32m✔\x1b[39m a')).toBe(true);
    expect(cut.endsWith('…\x1b[0m')).toBe(true);
    expect(fitLine('short', 80)).toBe('short');
  });
});
