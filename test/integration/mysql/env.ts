// Where the integration tests find the sandbox: the value the sandbox's global setup provides
// (inject('sandboxEnv')), else the process environment, else MYSQL_TEST_ENV_FILE.
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, inject } from 'vitest';
import { parseEnvFile } from '../../../src/runbook/env-file.js';
import { type Env, reset } from './harness.js';

export function testEnv(): Env | undefined {
  let injected: Env | undefined;
  try {
    injected = (inject as (k: string) => Env | undefined)('sandboxEnv');
  } catch {
    injected = undefined;
  }
  if (injected?.SANDBOX_OLD_DB_HOST) return injected;
  if (process.env.SANDBOX_OLD_DB_HOST) return process.env as Env;
  const file = process.env.MYSQL_TEST_ENV_FILE;
  if (file) return parseEnvFile(readFileSync(file, 'utf8')) as Env;
  return undefined;
}

/** Each test of the calling describe starts from the seed and leaves the seed behind. */
export function resetAroundEach(env: Env): void {
  beforeEach(() => reset(env), 60_000);
  afterEach(() => reset(env), 60_000);
}
