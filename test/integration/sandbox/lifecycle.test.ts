import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { sandboxCommand } from '../../../src/sandbox/cli.js';
import { DB_HOSTS, PROXY_HOST, type SandboxPorts } from '../../../src/sandbox/config.js';
import {
  resetSandbox,
  sandboxDown,
  sandboxStatus,
  sandboxUp,
  SandboxError,
} from '../../../src/sandbox/index.js';
import { assertPortsFree, type PortClaim } from '../../../src/sandbox/net.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';

const env = sandboxEnv();

function claims(p: SandboxPorts): PortClaim[] {
  return [
    { what: 'MariaDB old', host: DB_HOSTS.old, port: p.db, proto: 'tcp' },
    { what: 'MariaDB new', host: DB_HOSTS.new, port: p.db, proto: 'tcp' },
    { what: 'HAProxy', host: PROXY_HOST, port: p.db, proto: 'tcp' },
    { what: 'AWS endpoint', host: '127.0.0.1', port: p.aws, proto: 'tcp' },
    { what: 'DNS server', host: '127.0.0.1', port: p.dns, proto: 'udp' },
    { what: 'demo app', host: '127.0.0.1', port: p.app, proto: 'tcp' },
  ];
}

async function freePorts(): Promise<SandboxPorts> {
  for (let k = 0; k < 20; k++) {
    const p = { db: 45306 + k * 10, aws: 45566 + k * 10, dns: 45053 + k * 10, app: 45080 + k * 10 };
    try {
      await assertPortsFree(claims(p));
      return p;
    } catch {
      // held by someone else's run: next set
    }
  }
  throw new Error('no free port set for the lifecycle test');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const scratch: string[] = [];
afterAll(async () => {
  for (const d of scratch) {
    await sandboxDown({ dir: d }).catch(() => undefined);
    rmSync(d, { recursive: true, force: true });
  }
});

describe('sandbox lifecycle', () => {
  it('up twice, then down: no sandbox process remains, the ports are free, the directory is gone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cutover-sandbox-lifecycle-'));
    scratch.push(root);
    const dir = join(root, 'sb');
    const ports = await freePorts();
    const lines: string[] = [];
    const t0 = performance.now();
    const first = await sandboxUp({ dir, ports, log: (l) => lines.push(l) });
    const upMs = performance.now() - t0;
    console.log(`sandbox up (cold processes, warm template): ${Math.round(upMs)} ms`);
    expect(upMs).toBeLessThan(15_000);
    expect(lines.some((l) => l.includes(`${DB_HOSTS.old}:${ports.db}`))).toBe(true);
    const pids = JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')).pids as Record<string, number>;
    expect(Object.keys(pids).sort()).toEqual(['new', 'old', 'proxy', 'services']);
    expect(Object.values(pids).every(alive)).toBe(true);

    const t1 = performance.now();
    const second = await sandboxUp({ dir, ports, log: (l) => lines.push(l) });
    expect(performance.now() - t1).toBeLessThan(2000);
    expect(second).toEqual(first);
    expect(JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')).pids).toEqual(pids);
    expect(lines.at(-1)).toMatch(/already up/);
    expect((await sandboxStatus({ dir })).up).toBe(true);

    const down = await sandboxDown({ dir });
    expect(down.removed).toBe(true);
    for (const [name, pid] of Object.entries(pids))
      expect(alive(pid), `${name} (pid ${pid}) still alive`).toBe(false);
    await expect(assertPortsFree(claims(ports))).resolves.toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    expect((await sandboxStatus({ dir })).up).toBe(false);
    // down again: nothing to do, no error
    expect((await sandboxDown({ dir })).removed).toBe(false);
  });

  it('reset with a component dead: refused, naming it and the command that restarts it; up then heals it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cutover-sandbox-partial-'));
    scratch.push(root);
    const dir = join(root, 'sb');
    scratch.push(dir);
    const ports = await freePorts();
    const sb = await sandboxUp({ dir, ports });
    try {
      const proxy = JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')).pids.proxy as number;
      process.kill(proxy, 'SIGKILL');
      await vi.waitFor(() => expect(alive(proxy)).toBe(false));
      const err = await resetSandbox(sb).catch((e) => e);
      expect(err).toBeInstanceOf(SandboxError);
      expect(err.message).toBe(
        `the sandbox in ${dir} is only partly running (proxy not running): \`cutover sandbox up --dir ${dir}\` starts it afresh, in its seed state`,
      );
      await sandboxUp({ dir, ports });
      await expect(resetSandbox(sb)).resolves.toBeUndefined();
    } finally {
      await sandboxDown({ dir });
    }
  });

  it('a --dir that is a symlink: down stops everything and empties the target, the link stays usable', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cutover-sandbox-link-'));
    scratch.push(root);
    const link = join(root, 'link');
    symlinkSync(join(root, 'target'), link);
    const ports = await freePorts();
    for (let round = 0; round < 2; round++) {
      await sandboxUp({ dir: link, ports });
      const pids = JSON.parse(readFileSync(join(root, 'target', 'pids.json'), 'utf8')).pids as Record<
        string,
        number
      >;
      await sandboxDown({ dir: link });
      for (const [name, pid] of Object.entries(pids))
        expect(alive(pid), `${name} (pid ${pid}) still alive`).toBe(false);
      expect(existsSync(join(root, 'target'))).toBe(false);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
    }
  });

  it('refuses ports in use with one line naming the port and the address (exit 2), starting nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cutover-sandbox-busy-'));
    scratch.push(root);
    const dir = join(root, 'sb');
    const busy = {
      db: Number(env.SANDBOX_DB_PORT),
      aws: 1 + (await freePorts()).aws,
      dns: 59999,
      app: 59998,
    };
    const err = await sandboxUp({ dir, ports: busy }).catch((e) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ code: 'PORT_IN_USE', exitCode: 2 });
    expect(err.message).toContain(`tcp/${env.SANDBOX_DB_PORT} on ${env.SANDBOX_OLD_DB_HOST}`);
    expect(err.message).not.toContain('\n');
    expect(existsSync(join(dir, 'pids.json'))).toBe(false);
  });

  it('down refuses to delete a directory that is not a sandbox', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cutover-sandbox-notone-'));
    scratch.push(root);
    mkdirSync(join(root, 'keep'));
    writeFileSync(join(root, 'keep', 'precious.txt'), 'x');
    await expect(sandboxDown({ dir: root })).rejects.toMatchObject({ code: 'NOT_A_SANDBOX', exitCode: 2 });
    expect(existsSync(join(root, 'keep', 'precious.txt'))).toBe(true);
  });

  it('`sandbox status --json` reports what runs where', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      await sandboxCommand().parseAsync(['status', '--json', '--dir', env.SANDBOX_DIR], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const status = JSON.parse(out.join(''));
    expect(status.up).toBe(true);
    expect(status.components.map((c: { name: string }) => c.name)).toEqual([
      'mariadb old',
      'mariadb new',
      'haproxy',
      'aws endpoint',
      'dns',
      'demo app',
    ]);
  });
});
