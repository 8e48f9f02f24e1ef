// `cutover validate` as a user runs it: the examples pass; every runbook of the malformed corpus
// exits 2 with a FILE:LINE:COL line pointing at the mistake, and never a stack trace.
//
// Each corpus file says what it expects in its first lines:
//   # expect: LINE:COL text the message must contain
//   # args: extra CLI arguments (e.g. --var)
//   # requires-kind: a kind that must be registered for the case to apply
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getKind } from '../../../src/steps/registry.js';
import { REPO, runCli, stackLines } from '../../helpers/cli.js';

const FIXTURES = join(REPO, 'test', 'fixtures', 'runbooks');
const VALID = join(FIXTURES, 'valid');
const INVALID = join(FIXTURES, 'invalid');

interface Case {
  file: string;
  line: number;
  col: number;
  text: string;
  args: string[];
  requiresKind?: string;
}

function corpus(): Case[] {
  return readdirSync(INVALID)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const src = readFileSync(join(INVALID, f), 'utf8');
      const expect = /^# expect: (\d+):(\d+) (.+)$/m.exec(src);
      if (!expect) throw new Error(`${f}: no "# expect: LINE:COL text" header`);
      const args = /^# args: (.+)$/m.exec(src)?.[1]?.split(' ') ?? [];
      const requiresKind = /^# requires-kind: (\S+)$/m.exec(src)?.[1];
      return {
        file: f,
        line: Number(expect[1]),
        col: Number(expect[2]),
        text: expect[3]!,
        args,
        ...(requiresKind ? { requiresKind } : {}),
      };
    });
}

const cases = corpus();

describe('cutover validate: examples', () => {
  // The project's example runbooks, and the fixtures built from generic kinds.
  const shipped = existsSync(join(REPO, 'runbooks'))
    ? readdirSync(join(REPO, 'runbooks'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(REPO, 'runbooks', f))
    : [];
  const examples = [
    ...readdirSync(VALID)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(VALID, f)),
    ...shipped,
  ];

  it('has examples to check', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(examples.map((f) => relative(REPO, f)))('%s exits 0', async (f) => {
    const r = await runCli(['validate', f], {
      cwd: REPO,
      env: { CUTOVER_EXAMPLE_OLD_PASSWORD: undefined, CUTOVER_EXAMPLE_NEW_PASSWORD: undefined },
    });
    expect(r.stderr + r.stdout).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: ok — /);
  });

  it('--json reports ok with the step count', async () => {
    const r = await runCli(['validate', join(VALID, 'files.yaml'), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, name: 'files-example', steps: 5 });
  });
});

describe('cutover validate: the malformed corpus', () => {
  it('has at least 25 malformed runbooks that apply', () => {
    expect(cases.filter((c) => !c.requiresKind || getKind(c.requiresKind)).length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases)('$file → exit 2 at $line:$col', async (c) => {
    if (c.requiresKind && !getKind(c.requiresKind)) {
      // The kind this case needs is not registered yet: nothing to check.
      return;
    }
    const file = join(INVALID, c.file);
    // A relative path, as an operator types it: the message must name it as given.
    const shown = relative(REPO, file);
    const r = await runCli(['validate', shown, ...c.args], { cwd: REPO });
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(2);
    expect(stackLines(out), out).toEqual([]);
    expect(out).not.toMatch(/internal error/);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith(`${shown}:`));
    expect(lines.length, out).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^[^:]+:\d+:\d+ \S/);
    // The first error (they are sorted by position) is the mistake the file was written around.
    const first = lines.find((l) => !/^\S+:\d+:\d+ warning:/.test(l))!;
    expect(first, out).toContain(`${shown}:${c.line}:${c.col} `);
    expect(first, out).toContain(c.text);
  });

  it('--json lists the errors with positions and exits 2', async () => {
    const f = join(INVALID, '12-unknown-kind.yaml');
    const r = await runCli(['validate', f, '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.stdout) as { ok: boolean; errors: string[] };
    expect(j.ok).toBe(false);
    expect(j.errors[0]).toContain(`${f}:9:11 unknown step kind "shell.rnu"`);
  });

  it('a file that does not exist is bad input, not a crash', async () => {
    const r = await runCli(['validate', join(INVALID, 'no-such-runbook.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no such file/);
    expect(stackLines(r.stderr)).toEqual([]);
  });
});
