// The README cannot drift: every command in its ```bash / ```sh / ```console blocks runs, in order,
// in a temporary working copy (runbooks/ and schema/ copied), against a sandbox the README's own
// `cutover sandbox up` starts there — on this test's ports, not the defaults. The only rewrites:
// `cutover` / `npx cutover` is this checkout's `node bin/cutover.js`, `sandbox up` gets the port
// flags, and `<run-id>` is the newest run in runs/. Each command must exit as its block says (0
// unless marked); a block is skipped only by a `<!-- readme-test: skip — why -->` marker above it,
// and each skipped command is listed as a skipped test with its reason.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO, assertBuilt } from '../helpers/cli.js';
import { type ReadmeCommand, readmeCommands, rewriteCommand } from '../helpers/readme.js';

const commands = readmeCommands(readFileSync(join(REPO, 'README.md'), 'utf8'));

type Ports = { db: number; aws: number; dns: number; app: number };

/** Whether nothing listens there (TCP, or UDP for the DNS port). */
function free(host: string, port: number, udp = false): Promise<boolean> {
  return new Promise((res) => {
    if (udp) {
      const sock = createSocket('udp4');
      sock.once('error', () => res(false));
      sock.bind(port, host, () => sock.close(() => res(true)));
      return;
    }
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, host, () => srv.close(() => res(true)));
  });
}

// The README's sandbox: the pinned test ports + 10 (the global setup holds +0 and +5); unpinned,
// the first free set of ten, away from the global setup's range.
async function choosePorts(): Promise<Ports> {
  const v = process.env.CUTOVER_TEST_SANDBOX_PORTS;
  if (v) {
    const [db, aws, dns, app] = v.split(',').map((x) => Number(x) + 10);
    return { db: db!, aws: aws!, dns: dns!, app: app! };
  }
  for (let k = 0; k < 10; k++) {
    const p = { db: 45306 + k * 10, aws: 46566 + k * 10, dns: 42053 + k * 10, app: 49080 + k * 10 };
    const ok = await Promise.all([
      free('127.0.0.2', p.db),
      free('127.0.0.3', p.db),
      free('127.0.0.1', p.aws),
      free('127.0.0.1', p.dns, true),
      free('127.0.0.1', p.app),
    ]);
    if (ok.every(Boolean)) return p;
  }
  throw new Error('no free port set for the README sandbox (45306-45396, 46566-..., 42053-..., 49080-...)');
}

let ports: Ports;
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
let dir = '';

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // The test process carries the global sandbox's env: the README's commands must not see it.
  for (const [k, v] of Object.entries(process.env)) if (!/^(SANDBOX_|CUTOVER_|AWS_)/.test(k)) env[k] = v;
  return {
    ...env,
    CI: '1',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    CUTOVER_LOCK_DIR: join(dir, '.locks'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

function newestRun(): string {
  const runs = join(dir, 'runs');
  const ids = existsSync(runs) ? readdirSync(runs).filter((d) => statSync(join(runs, d)).isDirectory()) : [];
  if (!ids.length) throw new Error('<run-id>: no run in runs/ yet');
  return ids.sort((a, b) => statSync(join(runs, b)).mtimeMs - statSync(join(runs, a)).mtimeMs)[0]!;
}

function run(c: ReadmeCommand): { status: number | null; out: string; cmd: string } {
  const p = ports;
  const cmd = rewriteCommand(c.text, {
    cutover: `${sh(process.execPath)} ${sh(CLI)}`,
    sandboxUpFlags: `--db-port ${p.db} --aws-port ${p.aws} --dns-port ${p.dns} --app-port ${p.app}`,
    placeholders: { 'run-id': newestRun, 'run-dir': () => `runs/${newestRun()}` },
  });
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], {
    cwd: dir,
    env: childEnv(),
    encoding: 'utf8',
    timeout: 240_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`.slice(-4000), cmd };
}

describe.sequential('README.md commands', () => {
  beforeAll(async () => {
    assertBuilt();
    ports = await choosePorts();
    dir = mkdtempSync(join(tmpdir(), 'cutover-readme-'));
    for (const d of ['runbooks', 'schema'])
      if (existsSync(join(REPO, d))) cpSync(join(REPO, d), join(dir, d), { recursive: true });
  });

  // Whatever sandbox the README left running in the working copy goes down with it — also when
  // the runner exits without calling afterAll.
  const cleanup = () => {
    if (dir && existsSync(join(dir, '.sandbox')))
      try {
        execFileSync(process.execPath, [CLI, 'sandbox', 'down'], {
          cwd: dir,
          env: childEnv(),
          stdio: 'ignore',
        });
      } catch {
        // reported by the commands' own results; the directory goes regardless
      }
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  afterAll(() => {
    cleanup();
    process.removeListener('exit', cleanup);
  });

  it('finds the commands (and every skip has its reason)', () => {
    expect(commands.length).toBeGreaterThan(5);
    expect(commands.some((c) => /cutover sandbox up/.test(c.text) && !c.skip)).toBe(true);
    const skipped = commands.filter((c) => c.skip !== undefined);
    for (const c of skipped) expect(c.skip!.length).toBeGreaterThan(3);
    // Listed whatever the reporter shows: what the README says that this test does not run.
    if (skipped.length)
      console.log(
        `README commands not run (marked skip):\n${skipped.map((c) => `  README.md:${c.line} ${c.text.split('#')[0]!.trim()} — ${c.skip}`).join('\n')}`,
      );
  });

  for (const c of commands) {
    const name = `README.md:${c.line} ${c.text.split('#')[0]!.trim()}`;
    if (c.skip) {
      it.skip(`${name} — skipped: ${c.skip}`, () => {});
      continue;
    }
    it(name, { timeout: 300_000 }, () => {
      const r = run(c);
      expect(r.status, `${r.cmd}\nexit ${r.status}, expected ${c.expectExit}\n${r.out}`).toBe(c.expectExit);
    });
  }
});
