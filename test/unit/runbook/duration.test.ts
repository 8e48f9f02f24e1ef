import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../src/duration.js';
import { Duration } from '../../../src/runbook/schema.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['0s', 0],
    ['0', 0],
    ['10', 10_000],
    [' 2m ', 120_000],
    [1.5, 1500],
    [0, 0],
  ] as [string | number, number][])('%j → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', 'soon', '5 minutes', '5min', '-1s', '1d', 'ms', '1s2', 's1', '1.s', 'NaN'])(
    '%j is not a duration',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('the number %d is not a duration', (n) => {
    expect(parseDuration(n)).toBeUndefined();
  });

  it('the schema accepts what parseDuration accepts and says what it wants otherwise', () => {
    expect(Duration.safeParse('2m').success).toBe(true);
    expect(Duration.safeParse(3).success).toBe(true);
    const bad = Duration.safeParse('two minutes');
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toMatch(/expected a duration like 500ms, 30s, 2m or 1h30m/);
  });
});
