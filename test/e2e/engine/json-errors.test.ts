// With --json, a command that ends in an error says so on stdout too (one JSON object, the same
// exit code), so a script reading stdout learns why there is no result; stderr keeps the line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cutover-json-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

it('a runbook that does not parse: the error and its FILE:LINE:COL, exit 2', async () => {
  const file = join(dir, 'tab.yaml');
  writeFileSync(file, 'version: 1\nname: tab\nsteps:\n\t- id: w\n');
  const r = await runCli(['plan', file, '--json', '--runs-dir', join(dir, 'runs')]);
  expect(r.code).toBe(2);
  expect(lastJson(r.stdout)).toEqual({
    type: 'error',
    code: 'RUNBOOK_INVALID',
    exitCode: 2,
    message: `${file}:4:1 invalid YAML: Tabs are not allowed as indentation`,
    errors: [`${file}:4:1 invalid YAML: Tabs are not allowed as indentation`],
  });
  expect(r.stderr).toBe(`${file}:4:1 invalid YAML: Tabs are not allowed as indentation\n`);
});

it('not a run directory, and a missing argument: each one object with its code', async () => {
  const status = await runCli(['status', join(dir, 'nope'), '--json']);
  expect(status.code).toBe(2);
  expect(lastJson(status.stdout)).toMatchObject({ type: 'error', code: 'NO_JOURNAL', exitCode: 2 });
  const missing = await runCli(['run', '--json']);
  expect(missing.code).toBe(2);
  expect(lastJson(missing.stdout)).toMatchObject({
    type: 'error',
    code: 'commander.missingArgument',
    message: "missing required argument 'file'",
  });
});

it('without --json, stdout stays empty on an error', async () => {
  const r = await runCli(['status', join(dir, 'nope')]);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^cutover: .*no journal\.jsonl here/);
});
