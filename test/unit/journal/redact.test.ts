import { describe, expect, it } from 'vitest';
import { REDACTED, Redactor } from '../../../src/journal/redact.js';
import { quotingFor, render } from '../../../src/runbook/template.js';

describe('Redactor', () => {
  it('replaces every occurrence of every secret in text', () => {
    const r = new Redactor(['hunter2', 's3cr3t']);
    expect(r.text('pw=hunter2 again hunter2, token s3cr3t')).toBe('pw=*** again ***, token ***');
    expect(r.text('nothing here')).toBe('nothing here');
  });

  it('replaces the longest secret first, so one containing another goes whole', () => {
    const r = new Redactor(['abc', 'abcdef']);
    expect(r.text('x abcdef y abc')).toBe('x *** y ***');
  });

  it('ignores values too short to be secrets (they would redact everything)', () => {
    const r = new Redactor(['', 'a', 'ab']);
    expect(r.text('a b ab')).toBe('a b ab');
  });

  it('walks nested values, errors included, without touching keys or non-strings', () => {
    const r = new Redactor(['hunter2']);
    const v = r.value({
      hunter2: 'hunter2',
      list: ['x hunter2', 3, null, true, { deep: ['hunter2'] }],
      err: new Error('login failed for hunter2'),
    });
    expect(v).toEqual({
      hunter2: REDACTED,
      list: ['x ***', 3, null, true, { deep: [REDACTED] }],
      err: { name: 'Error', message: 'login failed for ***' },
    });
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { s: 'hunter2' };
    a.self = a;
    expect(new Redactor(['hunter2']).value(a)).toEqual({ s: REDACTED, self: '[circular]' });
  });

  it('returns the same value when there are no secrets', () => {
    const v = { a: 1 };
    expect(new Redactor([]).value(v)).toBe(v);
  });

  it('add() redacts from then on', () => {
    const r = new Redactor();
    r.add('late-secret');
    expect(r.text('a late-secret')).toBe('a ***');
  });

  it('catches a secret with quotes in its shell-quoted and JSON-escaped forms', () => {
    // Two single quotes: each is escaped in the shell form, and each escape must be matched.
    const secret = `pa'ss "w$r'd`;
    const r = new Redactor([secret]);
    const scope = { params: { p: secret }, env: {}, steps: {} };
    const rendered = render(
      { command: 'login --password ${params.p}', that: '${params.p} == "x"' },
      scope,
      quotingFor({ shellFields: ['command'], exprFields: ['that'] }),
    ) as { command: string; that: string };
    // The templated forms do not contain the raw secret, yet must not show it.
    expect(rendered.command.includes(secret)).toBe(false);
    expect(rendered.that.includes(secret)).toBe(false);
    // As the journal and the JSON renderer do it: redact the values, then serialize.
    for (const out of [r.text(rendered.command), r.text(rendered.that), JSON.stringify(r.value(rendered))]) {
      expect(out).not.toContain('ss ');
      expect(out).not.toContain('w$r');
    }
    expect(r.text(rendered.command)).toBe("login --password '***'");
  });
});
