// Secrets that leave by other doors than the journal: a `notify` webhook body (message and
// fields) carries *** where the journal does; a secret that is also part of a step id leaves the
// id alone, so rollback still finds and undoes that step.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import { onlyRunDir, readJournalLines, type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace;
let server: Server;
let url: string;
const bodies: string[] = [];
const headersSeen: Record<string, string | string[] | undefined>[] = [];

beforeAll(async () => {
  ws = workspace();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      if (req.method === 'GET') headersSeen.push(req.headers);
      else bodies.push(body);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  ws.cleanup();
});

describe('secrets out of webhooks and ids', () => {
  it('a notify step posts *** for a secret param and a secret-named env value, message and fields', async () => {
    const rb = writeRunbook(ws.dir, {
      name: 'notify-secrets',
      params: { token: { default: '${env.CUTOVER_TEST_NOTIFY_TOKEN}', secret: true } },
      steps: [
        {
          id: 'tell',
          kind: 'notify',
          with: {
            webhook: url,
            format: 'json',
            message: 'cutover with ${params.token} and ${env.CUTOVER_TEST_API_TOKEN}',
            fields: { token: '${params.token}', nested: { env: '${env.CUTOVER_TEST_API_TOKEN}' } },
          },
        },
      ],
    });
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], {
      cwd: ws.dir,
      env: { CUTOVER_TEST_API_TOKEN: 'EnvT0kenS3cretValue', CUTOVER_TEST_NOTIFY_TOKEN: 'N0tifyS3cretParam' },
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(bodies).toHaveLength(1);
    const body = JSON.parse(bodies[0]!) as Record<string, unknown>;
    expect(body.text).toBe('cutover with *** and ***');
    expect(body.token).toBe('***');
    expect(body.nested).toEqual({ env: '***' });
    expect(bodies[0]).not.toMatch(/N0tifyS3cretParam|EnvT0kenS3cretValue/);
  });

  it('a secret that is part of a step id: ids kept in the journal, rollback undoes that step', async () => {
    const runs = ws.path('runs-ids');
    const rb = writeRunbook(
      ws.dir,
      {
        name: 'secret-in-id',
        params: { dir: ws.filesDir, pw: { default: '${env.CUTOVER_TEST_PW}', secret: true } },
        steps: [
          sh('flipx-marker', 'echo ${params.pw} > ${params.dir}/marker.txt', {
            undo: 'rm -f ${params.dir}/marker.txt',
          }),
        ],
      },
      'ids.yaml',
    );
    const env = { CUTOVER_TEST_PW: 'flipx' };
    const r = await runCli(['run', rb, '--execute', '--runs-dir', runs], { cwd: ws.dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const runDir = onlyRunDir(runs);
    const text = readFileSync(join(runDir, 'journal.jsonl'), 'utf8');
    expect(text).not.toContain('***-marker');
    expect(readJournalLines(runDir).filter((l) => l.stepId === 'flipx-marker').length).toBeGreaterThan(1);
    // The value is still redacted where it is a value.
    expect(text).not.toMatch(/"stdout":"flipx/);
    expect(existsSync(join(ws.filesDir, 'marker.txt'))).toBe(true);
    const back = await runCli(['rollback', runDir, '--yes'], { cwd: ws.dir, env });
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(existsSync(join(ws.filesDir, 'marker.txt'))).toBe(false);
  });

  it('http.check headers: { env } and { file } references and a templated credential reach the server, not the journal, the report or the runbook copy', async () => {
    const runs = ws.path('runs-headers');
    ws.write('api-key.txt', 'FileApiKeyS3cret\n');
    const rb = writeRunbook(
      ws.dir,
      {
        name: 'header-secrets',
        steps: [
          {
            id: 'probe',
            kind: 'http.check',
            with: {
              url,
              headers: {
                Authorization: { env: 'CUTOVER_TEST_BEARER' },
                'X-Api-Key': { file: 'api-key.txt' },
                Cookie: 'session=${env.CUTOVER_TEST_COOKIE}',
              },
            },
          },
          sh('fail', 'false'),
        ],
      },
      'headers.yaml',
    );
    const r = await runCli(['run', rb, '--execute', '--runs-dir', runs], {
      cwd: ws.dir,
      env: { CUTOVER_TEST_BEARER: 'Bearer EnvBearerS3cret', CUTOVER_TEST_COOKIE: 'LiteralCookieS3cret' },
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(headersSeen.at(-1)).toMatchObject({
      authorization: 'Bearer EnvBearerS3cret',
      'x-api-key': 'FileApiKeyS3cret',
      cookie: 'session=LiteralCookieS3cret',
    });
    const runDir = onlyRunDir(runs);
    const html = await runCli(['report', runDir, '--format', 'html']);
    const md = await runCli(['report', runDir]);
    for (const [what, text] of [
      ['journal', readFileSync(join(runDir, 'journal.jsonl'), 'utf8')],
      ['runbook copy', readFileSync(join(runDir, 'runbook.yaml'), 'utf8')],
      ['html report', html.stdout],
      ['md report', md.stdout],
      ['terminal', r.stdout + r.stderr],
    ] as const)
      expect(text, what).not.toMatch(/EnvBearerS3cret|FileApiKeyS3cret|LiteralCookieS3cret/);
  });

  it('a secret templated into a shell.run command is not on any process argv, and arrives as one word', async () => {
    const runs = ws.path('runs-argv');
    const token = `Arg S3cr'et "x" $HOME`;
    const out = join(ws.filesDir, 'argv.txt');
    const rb = writeRunbook(
      ws.dir,
      {
        name: 'secret-argv',
        params: { token: { default: '${env.CUTOVER_TEST_ARGV_TOKEN}', secret: true }, out },
        steps: [
          // `; true`: bash stays (it would exec a last lone command), so its argv can be read.
          sh('use', 'printf %s ${params.token} > ${params.out}; sleep 2; true', {
            undo: 'printf %s ${params.token} > ${params.out}.undo',
          }),
        ],
      },
      'argv.yaml',
    );
    const env = { CUTOVER_TEST_ARGV_TOKEN: token };
    const run = startCli(['run', rb, '--execute', '--runs-dir', runs], { cwd: ws.dir, env });
    for (let i = 0; i < 200 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(out)).toBe(true);
    // Every process's argv, while the command is still running.
    const argvs = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      });
    expect(
      argvs.some((a) => a.includes('CUTOVER_SECRET_1')),
      'the command is running',
    ).toBe(true);
    expect(argvs.filter((a) => a.includes('S3cr'))).toEqual([]);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(token);
    // The undo (from the journal) gets it the same way.
    const back = await runCli(['rollback', onlyRunDir(runs), '--yes'], { cwd: ws.dir, env });
    expect(back.code, back.stderr).toBe(0);
    expect(readFileSync(`${out}.undo`, 'utf8')).toBe(token);
  });
});
