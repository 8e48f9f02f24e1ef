// What keeps `cutover validate` starting fast (bench/engine.ts measures it): the bundle's code cache
// is one V8 accepts, and validate loads none of the heavy dependencies nor child_process.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CLI, REPO } from '../helpers/cli.js';

const BUNDLE = join(REPO, 'dist', 'bundle', 'cli.js');

describe('the CLI bundle', () => {
  it('ships a code cache this Node accepts', () => {
    const script = new vm.Script(Module.wrap(readFileSync(BUNDLE, 'utf8')), {
      filename: BUNDLE,
      cachedData: readFileSync(`${BUNDLE}.cache`),
    });
    expect(script.cachedDataRejected).toBe(false);
  });

  // At exit, the child lists the packages it required and the builtins it loaded.
  function loadedBy(...args: string[]): { files: string[]; builtins: string[] } {
    const probe =
      "process.on('exit',()=>process.stderr.write('@@'+JSON.stringify({files:Object.keys(require.cache),builtins:process.moduleLoadList})+'\\n'))";
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `${probe};process.argv.splice(1,0,${JSON.stringify(CLI)});require(${JSON.stringify(CLI)})`,
        '--',
        ...args,
      ],
      { cwd: REPO, encoding: 'utf8', env: { ...process.env, CI: '1' } },
    );
    expect(r.status, r.stderr).toBe(0);
    const line = r.stderr.split('\n').find((l) => l.startsWith('@@'))!;
    return JSON.parse(line.slice(2));
  }

  it('validates without loading the AWS SDK, mysql2, zx, child_process or crypto', () => {
    const { files, builtins } = loadedBy('validate', 'runbooks/sandbox.yaml');
    expect(files.filter((f) => f.includes('node_modules'))).toEqual([]);
    expect(builtins).not.toContain('NativeModule child_process');
    // The runbook's digest is journaled by a run; validate never reads it (util/digest.ts).
    expect(builtins).not.toContain('NativeModule crypto');
  });

  it('answers --version without loading the sandbox (mysql2)', () => {
    const { files } = loadedBy('--version');
    expect(files.filter((f) => f.includes('node_modules'))).toEqual([]);
  });
});
