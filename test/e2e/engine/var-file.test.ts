// `--var-file FILE` as a user runs it: the same as repeated --var, --var winning, and a bad file is
// bad input (exit 2, one line naming file:line) before anything else happens.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, stackLines } from '../../helpers/cli.js';
import { workspace } from '../../helpers/workspace.js';

const ws = workspace('cutover-var-file-');
afterAll(() => ws.cleanup());

const runbook = join(ws.dir, 'r.yaml');
writeFileSync(
  runbook,
  'version: 1\nname: vf\nparams:\n  pause: { description: no default }\nsteps:\n  - id: w\n    kind: wait\n    with: { duration: "${params.pause}" }\n',
);
const vars = (name: string, text: string) => {
  const f = join(ws.dir, name);
  writeFileSync(f, text);
  return f;
};

describe('--var-file', () => {
  it('supplies a parameter that has no default', async () => {
    const r = await runCli(['validate', runbook, '--var-file', vars('ok.vars', '# pause\npause=10ms\n')]);
    expect(r.code).toBe(0);
    expect((await runCli(['validate', runbook])).code).toBe(2);
  });

  it('--var wins over the file', async () => {
    const bad = vars('bad-value.vars', 'pause=not-a-duration\n');
    expect((await runCli(['validate', runbook, '--var-file', bad])).code).toBe(2);
    expect((await runCli(['validate', runbook, '--var-file', bad, '--var', 'pause=5ms'])).code).toBe(0);
  });

  it('a malformed or missing file is one line, exit 2, no stack trace', async () => {
    const r = await runCli(['plan', runbook, '--var-file', vars('typo.vars', 'pause=1s\npause 2s\n')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/typo\.vars:2:1 expected key=value/);
    expect(stackLines(r.stderr)).toEqual([]);
    const missing = await runCli(['validate', runbook, '--var-file', join(ws.dir, 'nope.vars')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.vars: no such file/);
  });
});
