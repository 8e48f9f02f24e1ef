// The comparison's yardsticks: the longest stretch without an acknowledged write, and the targets
// issue 16 sets (proxy ≤ 400 ms and ≥ 3× shorter than the script; nothing lost; no failed run).
import { describe, expect, it } from 'vitest';
import { compareTargets, longestAckGap, type Summary } from '../../../bench/flip-compare.js';

const summary = (contender: string, unavailableMs: number, over: Partial<Summary> = {}): Summary => ({
  contender,
  writers: 'x:1',
  runs: [],
  failed: 0,
  unavailableMs,
  failedAttempts: 0,
  maintenanceMs: 1000,
  lostWrites: 0,
  lostTotal: 0,
  ...over,
});

describe('longestAckGap', () => {
  it('is the widest stretch between acknowledgements, in any order', () => {
    expect(longestAckGap([10, 30, 1030, 1040], 0, 1100)).toBe(1000);
    expect(longestAckGap([1040, 10, 1030, 30], 0, 1100)).toBe(1000);
  });
  it('counts a load that never recovered up to its end, and one that never started from its start', () => {
    expect(longestAckGap([10, 20], 0, 5000)).toBe(4980);
    expect(longestAckGap([], 100, 600)).toBe(500);
  });
});

describe('compareTargets', () => {
  const verdict = (rows: ReturnType<typeof compareTargets>, what: RegExp) =>
    rows.filter(([w]) => what.test(w)).map(([, , , ok]) => ok);

  it('meets the targets when the proxy is fast enough and three times shorter than the script', () => {
    const rows = compareTargets([summary('script', 1300), summary('dns', 1400), summary('proxy', 400)]);
    expect(verdict(rows, /proxy: write-unavailability \(median/)).toEqual([true]);
    expect(verdict(rows, /÷/)).toEqual([true]);
    expect(rows.some(([, , , ok]) => ok === false)).toBe(false);
  });

  it('misses on a slow proxy, a ratio under 3, a lost write, or a failed run', () => {
    const rows = compareTargets([
      summary('script', 1200, { lostTotal: 1 }),
      summary('dns', 1400, { failed: 1 }),
      summary('proxy', 401),
    ]);
    expect(verdict(rows, /proxy: write-unavailability \(median/)).toEqual([false]);
    expect(verdict(rows, /÷/)).toEqual([false]);
    expect(verdict(rows, /script: acknowledged writes lost/)).toEqual([false]);
    expect(verdict(rows, /dns: runs that failed/)).toEqual([false]);
  });

  it('says the proxy was not run rather than judging it when its runbook is absent', () => {
    const rows = compareTargets([summary('script', 1300), summary('dns', 1400)]);
    expect(rows.find(([w]) => w === 'flip compare proxy')?.[1]).toMatch(/not run/);
    expect(rows.some(([, , , ok]) => ok === false)).toBe(false);
  });
});

describe('compareTargets, holding', () => {
  it('wants fewer failed write attempts with the proxy holding than without', () => {
    const rows = (hold: number, noHold: number) =>
      compareTargets([
        summary('script', 1300),
        summary('proxy', 300, { failedAttempts: hold }),
        summary('proxy-nohold', 300, { failedAttempts: noHold }),
      ]).filter(([w]) => /holding vs not/.test(w));
    expect(rows(2, 40).map(([, , , ok]) => ok)).toEqual([true]);
    expect(rows(40, 40).map(([, , , ok]) => ok)).toEqual([false]);
  });
});
