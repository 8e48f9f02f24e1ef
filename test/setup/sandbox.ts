// Vitest global setup of the integration project: two sandboxes per test run — the self-managed one
// and the managed-platform one (--platform rds) — in temporary directories, on non-default ports so
// a developer's own `cutover sandbox up` keeps running undisturbed. Tests read them with
// sandboxEnv() / rdsSandboxEnv() from ./sandbox-env.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { belongsTo, isAlive, readPidsFile, stopPids } from '../../src/sandbox/processes.js';
import {
  type Platform,
  type SandboxEnv,
  type SandboxPorts,
  SandboxError,
  sandboxDown,
  sandboxUp,
} from '../../src/sandbox/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    sandboxEnv: SandboxEnv;
    /** The managed-platform sandbox (--platform rds), on the self sandbox's ports + 5. */
    rdsSandboxEnv: SandboxEnv;
  }
}

// Route 53's PENDING → INSYNC in the tests' sandboxes: long enough that every flip really waits for
// it, short enough that the matrices' hundred-odd flips do not spend minutes there (the demo and the
// bench keep the sandbox's 1 s; tests that time INSYNC set their own).
const TEST_INSYNC_DELAY_MS = 200;

const BASE_PORTS: SandboxPorts = { db: 43306, aws: 44566, dns: 40053, app: 48080 };

function portsFromEnv(offset: number): SandboxPorts | undefined {
  // CUTOVER_TEST_SANDBOX_PORTS=db,aws,dns,app pins the ports (no fallback); the rds sandbox adds 5.
  const v = process.env.CUTOVER_TEST_SANDBOX_PORTS;
  if (!v) return undefined;
  const [db, aws, dns, app] = v.split(',').map((x) => Number(x) + offset);
  return { db: db!, aws: aws!, dns: dns!, app: app! };
}

interface Started {
  env: SandboxEnv;
  teardown: () => Promise<void>;
}

async function startOne(platform: Platform, offset: number): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), `cutover-test-sandbox-${platform}-`));
  const log = (line: string) => process.stderr.write(`[sandbox ${platform}] ${line}\n`);
  let tornDown = false;
  // Recorded pids that still run this sandbox (a recycled pid is left alone).
  const ourPids = () =>
    Object.values(readPidsFile(join(dir, 'pids.json'))?.pids ?? {}).filter((pid) =>
      belongsTo(pid, `${dir}/`),
    );
  // Last resort if vitest exits without calling the teardown (killed runner, crash): no MariaDB left behind.
  const onExit = () => {
    if (tornDown) return;
    const pids = ourPids();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // Synchronous wait (an exit handler cannot await): remove files only once nobody writes them.
    const tick = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 3000;
    while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(tick, 0, 0, 20);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const pinned = portsFromEnv(offset);
  // Other people's test runs on this machine may hold the base ports: shift until a set is free.
  const candidates = pinned
    ? [pinned]
    : Array.from({ length: 10 }, (_, k) => ({
        db: BASE_PORTS.db + k * 10 + offset,
        aws: BASE_PORTS.aws + k * 10 + offset,
        dns: BASE_PORTS.dns + k * 10 + offset,
        app: BASE_PORTS.app + k * 10 + offset,
      }));
  let env: SandboxEnv | undefined;
  try {
    for (const ports of candidates) {
      try {
        env = await sandboxUp({ dir, ports, log, platform, insyncDelayMs: TEST_INSYNC_DELAY_MS });
        break;
      } catch (e) {
        if (!(e instanceof SandboxError && e.code === 'PORT_IN_USE') || ports === candidates.at(-1)) throw e;
        log(`${e.message}; trying other ports`);
      }
    }
  } catch (e) {
    await sandboxDown({ dir }).catch(() => undefined);
    tornDown = true;
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  if (!env) throw new Error('sandbox did not start');

  const teardown = async () => {
    try {
      await sandboxDown({ dir, log });
    } catch (e) {
      // Whatever went wrong, stop what runs before removing anything: deleting the files of a
      // running MariaDB leaves a half-removed directory and orphaned servers.
      log(`sandbox down failed (${(e as Error).message}); stopping its processes by pid`);
      await stopPids(ourPids());
    } finally {
      tornDown = true;
      process.off('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return { env, teardown };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Both profiles at once: the managed one costs about a second more.
  const started = await Promise.allSettled([startOne('self', 0), startOne('rds', 5)]);
  const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((o) => o.teardown()));
    throw failed.reason;
  }
  const [self, rds] = ok as [Started, Started];
  project.provide('sandboxEnv', self.env);
  project.provide('rdsSandboxEnv', rds.env);
  Object.assign(process.env, self.env);
  return async () => {
    await Promise.all([self.teardown(), rds.teardown()]);
  };
}
