// `--var-file FILE` as a user runs it: the same as repeated --var, --var winning, and a bad file is
// bad input (exit 2, one line naming file:line) before anything else happens.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
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

describe('secret parameters never on argv', () => {
  const secretRunbook = join(ws.dir, 'secret.yaml');
  const out = join(ws.dir, 'token.out');
  writeFileSync(
    secretRunbook,
    `version: 1\nname: vf-secret\nparams:\n  token: { secret: true }\nsteps:\n  - { id: use, kind: shell.run, with: { command: "printf %s \${params.token} > ${out}", undo: "true" } }\n`,
  );
  const runs = join(ws.dir, 'runs');

  it.each([
    ['validate', [secretRunbook]],
    ['plan', [secretRunbook, '--runs-dir', runs]],
    ['run', [secretRunbook, '--execute', '--runs-dir', runs]],
  ])(
    '%s refuses --var for a secret: exit 2 at the param, pointing at --var-file, nothing run',
    async (cmd, args) => {
      const r = await runCli([cmd, ...args, '--var', 'token=Argv-S3cret-Value']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /secret\.yaml:4:3 secret parameter "token" given with --var: the command line is visible to every local user \(ps\); put token=\.\.\. in a file only you can read \(chmod 600\) and pass --var-file FILE/,
      );
      expect(r.stdout + r.stderr).not.toContain('Argv-S3cret-Value');
      expect(stackLines(r.stderr)).toEqual([]);
      expect(existsSync(out)).toBe(false);
    },
  );

  it('a var file others can read is refused for a secret; mode 0600 runs', async () => {
    const open = vars('open.vars', 'token=File-S3cret-Value\n');
    chmodSync(open, 0o644);
    const r = await runCli(['run', secretRunbook, '--execute', '--runs-dir', runs, '--var-file', open]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /secret parameter "token" comes from .*open\.vars, which group or others can access \(mode 644\): chmod 600/,
    );
    expect(existsSync(out)).toBe(false);
    chmodSync(open, 0o600);
    const ok = await runCli(['run', secretRunbook, '--execute', '--runs-dir', runs, '--var-file', open]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('File-S3cret-Value');
  });
});
