// What the README test extracts and how it rewrites a command: the harness must see every shell
// block, skip only what a marker skips, and never quietly drop a command.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { ReadmeMarkerError, readmeCommands, rewriteCommand } from '../helpers/readme.js';

const md = (...lines: string[]) => lines.join('\n');

describe('readmeCommands', () => {
  it('takes bash, sh and console blocks, leaves yaml and unlabelled blocks', () => {
    const cs = readmeCommands(
      md(
        '```bash',
        'cutover kinds   # a comment',
        '```',
        '```yaml',
        'version: 1',
        '```',
        '```',
        'src/cli.ts   parsing',
        '```',
        '```console',
        '$ cutover validate a.yaml',
        'a.yaml: ok',
        '```',
        '```sh',
        '# only a comment',
        'cutover plan a.yaml \\',
        '  --var x=1',
        '```',
      ),
    );
    expect(cs.map((c) => [c.line, c.text, c.expectExit])).toEqual([
      [2, 'cutover kinds   # a comment', 0],
      [11, 'cutover validate a.yaml', 0],
      [16, 'cutover plan a.yaml \\\n  --var x=1', 0],
    ]);
  });

  it('applies a marker to the block right below it only', () => {
    const cs = readmeCommands(
      md(
        '<!-- readme-test: skip — needs real AWS -->',
        '',
        '```sh',
        'cutover run prod.yaml --execute',
        '```',
        '<!-- readme-test: exit 2 -->',
        '```sh',
        'cutover validate broken.yaml',
        '```',
        '<!-- readme-test: exit 2 -->',
        'A sentence between the marker and the block.',
        '```sh',
        'cutover kinds',
        '```',
      ),
    );
    expect(cs.map((c) => [c.text, c.expectExit, c.skip])).toEqual([
      ['cutover run prod.yaml --execute', 0, 'needs real AWS'],
      ['cutover validate broken.yaml', 2, undefined],
      ['cutover kinds', 0, undefined],
    ]);
  });

  it('refuses a skip without a reason and an unknown marker', () => {
    expect(() => readmeCommands(md('<!-- readme-test: skip -->', '```sh', 'x', '```'))).toThrow(
      ReadmeMarkerError,
    );
    expect(() => readmeCommands(md('<!-- readme-test: maybe -->', '```sh', 'x', '```'))).toThrow(
      /unknown readme-test marker/,
    );
  });

  it('finds the README itself runnable: the sandbox walk-through is not skipped', () => {
    const cs = readmeCommands(readFileSync(join(REPO, 'README.md'), 'utf8'));
    const run = cs.filter((c) => !c.skip).map((c) => c.text);
    expect(run.some((t) => t.startsWith('npx cutover sandbox up'))).toBe(true);
    expect(run.some((t) => /cutover run runbooks\/sandbox\.yaml --execute/.test(t))).toBe(true);
  });
});

describe('rewriteCommand', () => {
  const ctx = {
    cutover: 'node /r/bin/cutover.js',
    sandboxUpFlags: '--db-port 1 --aws-port 2 --dns-port 3 --app-port 4',
    placeholders: { 'run-id': () => 'R7' },
  };

  it('runs this checkout for cutover at each command position, and nowhere else', () => {
    expect(rewriteCommand('npx cutover sandbox down && cutover kinds | head -1', ctx)).toBe(
      'node /r/bin/cutover.js sandbox down && node /r/bin/cutover.js kinds | head -1',
    );
    expect(rewriteCommand('echo cutover', ctx)).toBe('echo cutover');
  });

  it('puts the sandbox on the test ports unless the command names its own', () => {
    expect(rewriteCommand('cutover sandbox up --platform rds   # note', ctx)).toBe(
      'node /r/bin/cutover.js sandbox up --db-port 1 --aws-port 2 --dns-port 3 --app-port 4 --platform rds   # note',
    );
    expect(rewriteCommand('cutover sandbox up --db-port 9', ctx)).toBe(
      'node /r/bin/cutover.js sandbox up --db-port 9',
    );
  });

  it('fills known placeholders and refuses unknown ones', () => {
    expect(rewriteCommand('cutover status runs/<run-id>', ctx)).toBe('node /r/bin/cutover.js status runs/R7');
    expect(() => rewriteCommand('cutover validate <file>', ctx)).toThrow(/placeholder <file>/);
  });
});
