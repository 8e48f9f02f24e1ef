// `cutover announce` as the comms team's operator runs it: the built CLI, a rehearsal in --runs-dir,
// the text on stdout or in -o FILE; bad input is one readable line and exit 2.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { assertBuilt, runCli } from '../../helpers/cli.js';
import { type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace;
let file: string;

beforeAll(() => {
  assertBuilt();
  ws = workspace('cutover-announce-');
  file = ws.write(
    'rb.yaml',
    `version: 1
name: shop-window
maintenance: { budget: 5m }
steps:
  - id: enter
    kind: maintenance.enter
    with:
      command: "true"
      paths:
        - { name: web, url: "\${params.web}", expect: { status: 503 } }
        - { name: mobile-api, url: "https://api.shop.example/m", expect: { status: 503 } }
  - id: exit
    kind: maintenance.exit
    with: { command: "true", paths: [{ name: web, url: "\${params.web}" }] }
params:
  web: https://www.shop.example/
`,
  );
  const run = join(ws.runsDir, '20261101T000000Z-shop-window-1');
  mkdirSync(run);
  const j = Journal.open(run, 'a'.repeat(64), new Redactor([]));
  j.append('rehearsal', { result: { status: 'succeeded', stepDurationsMs: { enter: 4000, exit: 4000 } } });
  j.close();
});
afterAll(() => ws.cleanup());

describe('cutover announce (CLI)', () => {
  it('prints Markdown with the --var value of a path, and writes plain text to -o', async () => {
    const md = await runCli([
      'announce',
      file,
      '--at',
      '2031-03-02T09:30Z',
      '--runs-dir',
      ws.runsDir,
      '--var',
      'web=https://shop.example/fr/',
    ]);
    expect(md.stderr).toBe('');
    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/\*\*Start:\*\* Sun, 2 Mar 2031, 09:30 UTC/);
    // (4 s + 4 s) × 1.25 = 10 s, + 25% → 09:30:12.5, rounded up to 09:31.
    expect(md.stdout).toMatch(/\*\*End:\*\* Sun, 2 Mar 2031, 09:31 UTC/);
    expect(md.stdout).toMatch(/- web: `https:\/\/shop\.example\/fr\/`/);

    const out = ws.path('announce.txt');
    const txt = await runCli([
      'announce',
      file,
      '--at',
      '2031-03-02T09:30Z',
      '--runs-dir',
      ws.runsDir,
      '--format',
      'text',
      '-o',
      out,
    ]);
    expect(txt.code).toBe(0);
    expect(txt.stderr).toMatch(/announcement written to/);
    expect(readFileSync(out, 'utf8')).toMatch(/^End: {3}Sun, 2 Mar 2031, 09:31 UTC/m);
  });

  it.each([
    [['--at', '9:30'], /^cutover: --at 9:30: expected a time with its zone/],
    [['--at', '2031-03-02T09:30'], /expected a time with its zone/],
    [['--at', '2001-01-01T00:00Z'], /that time has passed/],
    [['--at', '2031-03-02T09:30Z', '--margin', 'some'], /--margin some: expected a duration/],
    [['--at', '2031-03-02T09:30Z', '--time-zone', 'Mars/Olympus'], /not a time zone name/],
    [['--at', '2031-03-02T09:30Z', '--format', 'pdf'], /argument 'pdf' is invalid/],
  ])('%j: one line, exit 2', async (args, message) => {
    const r = await runCli(['announce', file, '--runs-dir', ws.runsDir, ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => !/run with --help/.test(l)),
    ).toHaveLength(1);
  });

  it('without a rehearsal in --runs-dir: exit 2, says to rehearse', async () => {
    const r = await runCli(['announce', file, '--at', '2031-03-02T09:30Z', '--runs-dir', ws.path('files')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no successful rehearsal of "shop-window".*cutover rehearse/);
  });
});
