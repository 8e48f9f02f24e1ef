import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../src/util/expression.js';

describe('evaluate', () => {
  it.each([
    ['1 == 1', true],
    ['1 == 2', false],
    ['1 != 2', true],
    ['2 > 1 && 1 >= 1 && 1 < 2 && 2 <= 2', true],
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 / 4', 2.5],
    ['10 - 2 - 3', 5],
    ['-3 + 5', 2],
    ['10-2', 8],
    ['10 -2', 8],
    ['1-1 == 0', true],
    ['3 - -2', 5],
    ['2*-3', -6],
    ['-(2 + 1)', -3],
    ['1e3 == 1000', true],
    ['0.5 < 1', true],
    ['"ok" == \'ok\'', true],
    ['"a\\"b" == \'a"b\'', true],
    ["'it\\'s' == \"it's\"", true],
    ['"ok" == "OK"', false],
    ['"1" == 1', false],
    ['null == null', true],
    ['true && false', false],
    ['true || false', true],
    ['!false', true],
    ['!(1 == 1)', false],
    ['1 == 1 || 1 / 0 > 0', true],
    ['false && true || true', true],
    ['1 < 2 == true', true],
    ['  1   ==   1  ', true],
  ] as [string, unknown][])('%s → %j', (src, want) => {
    expect(evaluate(src)).toEqual(want);
  });

  it('&& and || return operands, like JavaScript', () => {
    expect(evaluate('0 || "x"')).toBe('x');
    expect(evaluate('"a" && 2')).toBe(2);
  });

  it.each([
    ['1 ==', /unexpected end of expression/],
    ['1 == == 2', /unexpected "=="/],
    ['(1 == 1', /missing \)/],
    ['1 1', /unexpected "1"/],
    ['foo == 1', /unexpected "foo == 1"/],
    ['process.exit(1)', /unexpected/],
    ['"unterminated', /unexpected/],
    ['1 = 1', /unexpected/],
  ])('%s is rejected: %s', (src, msg) => {
    expect(() => evaluate(src)).toThrow(msg);
  });

  it('has no identifiers, so nothing outside the expression is reachable', () => {
    for (const src of ['globalThis', 'this', 'constructor', '[].constructor', 'x => 1'])
      expect(() => evaluate(src)).toThrow();
  });

  it('parse-only mode checks syntax without evaluating', () => {
    expect(() => evaluate('1 / 0 > "x" && 3', true)).not.toThrow();
    expect(() => evaluate('1 >', true)).toThrow();
  });
});
