// Vitest global setup of the integration project: one sandbox per test run, in a temporary
// directory, on non-default ports so a developer's own `cutover sandbox up` keeps running
// undisturbed. Tests read it with inject('sandboxEnv') (or sandboxEnv() from ./sandbox-env.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { belongsTo, isAlive, readPidsFile, stopPids } from '../../src/sandbox/processes.js';
import {
  type SandboxEnv,
  type SandboxPorts,
  SandboxError,
  sandboxDown,
  sandboxUp,
} from '../../src/sandbox/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    sandboxEnv: SandboxEnv;
  }
}

const BASE_PORTS: SandboxPorts = { db: 43306, aws: 44566, dns: 40053, app: 48080 };

function portsFromEnv(): SandboxPorts | undefined {
  // CUTOVER_TEST_SANDBOX_PORTS=db,aws,dns,app pins the ports (no fallback).
  const v = process.env.CUTOVER_TEST_SANDBOX_PORTS;
  if (!v) return undefined;
  const [db, aws, dns, app] = v.split(',').map(Number);
  return { db: db!, aws: aws!, dns: dns!, app: app! };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-test-sandbox-'));
  const log = (line: string) => process.stderr.write(`[sandbox] ${line}\n`);
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

  const pinned = portsFromEnv();
  // Other people's test runs on this machine may hold the base ports: shift until a set is free.
  const candidates = pinned
    ? [pinned]
    : Array.from({ length: 10 }, (_, k) => ({
        db: BASE_PORTS.db + k * 10,
        aws: BASE_PORTS.aws + k * 10,
        dns: BASE_PORTS.dns + k * 10,
        app: BASE_PORTS.app + k * 10,
      }));
  let env: SandboxEnv | undefined;
  try {
    for (const ports of candidates) {
      try {
        env = await sandboxUp({ dir, ports, log });
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
  project.provide('sandboxEnv', env);
  Object.assign(process.env, env);

  return async () => {
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
}
