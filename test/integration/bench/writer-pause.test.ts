// The comparison's --writer-pause: CanaryLoad's pause after each acknowledged write really paces the
// writers (on a loaded machine flat-out writers outrun the replica's applier; see bench/flip-compare.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';

const env = sandboxEnv();
const db = (user: string, password: string): DatabaseConfig => ({
  name: 'old',
  host: env.SANDBOX_OLD_DB_HOST,
  port: Number(env.SANDBOX_DB_PORT),
  user,
  password,
  database: env.SANDBOX_DB_NAME,
  connectTimeoutMs: 1000,
});

async function acksIn(ms: number, pauseMs: number): Promise<number> {
  const load = new CanaryLoad(
    db(env.SANDBOX_APP_DB_USER, env.SANDBOX_APP_DB_PASSWORD),
    'cutover_canary',
    `pause-${pauseMs}`,
    1,
    env.SANDBOX_OLD_DB_HOST,
    true,
    pauseMs,
  );
  load.start();
  await new Promise((r) => setTimeout(r, ms));
  return (await load.stop()).acknowledged;
}

describe('CanaryLoad pause', () => {
  beforeAll(async () => {
    await resetSandbox(env);
    await createCanaryTable(db(env.SANDBOX_DB_USER, env.SANDBOX_DB_PASSWORD), 'cutover_canary');
  });
  afterAll(async () => {
    await resetSandbox(env);
  });

  it('holds one writer to about one write per pause', async () => {
    const paced = await acksIn(1000, 100);
    expect(paced).toBeGreaterThanOrEqual(3);
    expect(paced).toBeLessThanOrEqual(11);
    // Flat out (the default) the same writer does many times more.
    expect(await acksIn(1000, 0)).toBeGreaterThan(paced * 3);
  });
});
