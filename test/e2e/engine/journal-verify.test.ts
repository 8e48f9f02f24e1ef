// `cutover log verify`: an untouched journal passes; one edited in any single line (a value
// changed, a line deleted, a copied line inserted, two lines swapped) fails and names that line.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import { onlyRunDir, type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace;
let runDir: string;
let lines: string[];

beforeAll(async () => {
  ws = workspace();
  const rb = writeRunbook(ws.dir, {
    name: 'journal-verify',
    params: { dir: ws.filesDir },
    steps: [
      sh('a', 'echo a >> ${params.dir}/f.txt', { undo: "sed -i '/^a$/d' ${params.dir}/f.txt" }),
      sh('b', 'echo b >> ${params.dir}/f.txt', { undo: "sed -i '/^b$/d' ${params.dir}/f.txt" }),
      sh('c', 'false', {}),
    ],
  });
  const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
  expect(r.code, r.stdout + r.stderr).toBe(1);
  runDir = onlyRunDir(ws.runsDir);
  lines = readFileSync(join(runDir, 'journal.jsonl'), 'utf8').split('\n').filter(Boolean);
});

afterAll(() => ws.cleanup());

type Mutation = (ls: string[], i: number) => string[] | undefined;

// i is 0-based; each mutation makes line i+1 the first line that no longer fits the chain.
const mutations: Record<string, Mutation> = {
  'change a value': (ls, i) =>
    ls.map((l, j) =>
      j === i
        ? l.replace(
            /"ts":"([^"]*?)(\d)Z"/,
            (_m, a: string, d: string) => `"ts":"${a}${(Number(d) + 1) % 10}Z"`,
          )
        : l,
    ),
  'delete the line': (ls, i) => ls.filter((_l, j) => j !== i),
  // A copy of the line before it (or, for the first line, of the second) inserted at i.
  'insert a copied line': (ls, i) => [...ls.slice(0, i), ls[i === 0 ? 1 : i - 1]!, ...ls.slice(i)],
  'swap with the next line': (ls, i) =>
    i + 1 < ls.length ? [...ls.slice(0, i), ls[i + 1]!, ls[i]!, ...ls.slice(i + 2)] : undefined,
};

async function verifyCopy(name: string, content: string[]) {
  const dir = ws.path('tampered', name);
  cpSync(runDir, dir, { recursive: true });
  writeFileSync(join(dir, 'journal.jsonl'), `${content.join('\n')}\n`);
  return { dir, r: await runCli(['log', 'verify', dir]) };
}

describe('cutover log verify', () => {
  it('passes an untouched journal (exit 0)', async () => {
    expect(lines.length).toBeGreaterThanOrEqual(15);
    const r = await runCli(['log', 'verify', runDir]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`intact, ${lines.length} records`);
    const j = await runCli(['log', 'verify', runDir, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, records: lines.length });
  });

  for (const [what, mutate] of Object.entries(mutations)) {
    it(`fails on "${what}" at every line and names that line`, async () => {
      const cases = lines
        .map((_l, i) => ({ i, content: mutate(lines, i) }))
        .filter((c) => c.content !== undefined);
      expect(cases.length).toBeGreaterThanOrEqual(lines.length - 1);
      // A few at a time: each is a CLI process.
      for (let k = 0; k < cases.length; k += 4) {
        await Promise.all(
          cases.slice(k, k + 4).map(async ({ i, content }) => {
            expect(content).not.toEqual(lines);
            const { dir, r } = await verifyCopy(`${what.replace(/\W+/g, '-')}-${i + 1}`, content!);
            expect(r.code, `${what} at line ${i + 1}: ${r.stdout}${r.stderr}`).toBe(1);
            expect(r.stdout).toContain(`${dir}/journal.jsonl:${i + 1}: TAMPERED`);
          }),
        );
      }
    });
  }

  // The head is part of the anchor (issue 14): emptied or removed, the end of the journal is unchecked.
  it('a journal whose head file was emptied or removed fails', async () => {
    const dir = ws.path('tampered', 'no-head');
    cpSync(runDir, dir, { recursive: true });
    writeFileSync(join(dir, 'journal.head'), '');
    const r = await runCli(['log', 'verify', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/journal.head/);
    rmSync(join(dir, 'journal.head'));
    const gone = await runCli(['log', 'verify', dir]);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toMatch(/journal.head is missing/);
  });
});
