// Hostile runbooks the corpus cannot hold as files: a 50 MB runbook is refused unread, at 1:1, in
// well under the minutes it once took; every hostile corpus entry (42–55) is judged within a second
// (measured in-process: the CLI's own start-up on a loaded machine is not the validator's time).
import { readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunbookError } from '../../../src/errors.js';
import { loadRunbookFile } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { REPO, runCli } from '../../helpers/cli.js';
import { workspace } from '../../helpers/workspace.js';

const ws = workspace();
afterAll(() => ws.cleanup());

describe('validate: hostile input', () => {
  it('a 50 MB runbook: exit 2, FILE:1:1, one line, refused unread', async () => {
    const file = ws.path('huge.yaml');
    const big = Buffer.alloc(50 * 1024 * 1024, 'a');
    big.write('version: 1\nname: huge\n# ');
    writeFileSync(file, big);
    const r = await runCli(['validate', file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      `${file}:1:1 the file is ${big.length} bytes; a runbook is at most 1048576 (refused unread)`,
    ]);
    const t0 = performance.now();
    expect(() => loadRunbookFile(file)).toThrow(RunbookError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('each hostile corpus entry: exit 2 on one line, judged in under a second', async () => {
    const dir = join(REPO, 'test', 'fixtures', 'runbooks', 'invalid');
    const files = readdirSync(dir).filter((f) => /^(4[2-9]|5[0-5])-/.test(f));
    expect(files.length).toBe(14);
    for (const f of files) {
      const r = await runCli(['validate', relative(REPO, join(dir, f))], { cwd: REPO });
      expect(r.code, f).toBe(2);
      expect(
        r.stderr.split('\n').filter((l) => l && !/ warning: /.test(l)),
        f,
      ).toHaveLength(1);
      const t0 = performance.now();
      expect(() => prepareRunbook(loadRunbookFile(join(dir, f)), { env: {} }), f).toThrow(RunbookError);
      expect(performance.now() - t0, f).toBeLessThan(1000);
    }
  });
});
