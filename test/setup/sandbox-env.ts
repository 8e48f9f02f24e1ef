// The running test sandbox's env (see ./sandbox.ts). Also a setupFile of the integration project:
// importing it puts the env into the worker's process.env, where SDK clients and the code under
// test look for CUTOVER_AWS_ENDPOINT, AWS_REGION and the dummy credentials.
import { inject } from 'vitest';
import type { SandboxEnv } from '../../src/sandbox/index.js';

function provided(key: 'sandboxEnv' | 'rdsSandboxEnv' = 'sandboxEnv'): SandboxEnv | undefined {
  try {
    return inject(key);
  } catch {
    return undefined;
  }
}

export function sandboxEnv(): SandboxEnv {
  const env = provided();
  if (!env?.SANDBOX_DIR)
    throw new Error(
      'no sandbox: run this test in the integration project (npx vitest run --project integration)',
    );
  return env;
}

/** The managed-platform sandbox (`sandbox up --platform rds`), started beside the self-managed one. */
export function rdsSandboxEnv(): SandboxEnv {
  const env = provided('rdsSandboxEnv');
  if (!env?.SANDBOX_DIR)
    throw new Error(
      'no rds sandbox: run this test in the integration project (npx vitest run --project integration)',
    );
  return env;
}

const env = provided();
if (env) Object.assign(process.env, env);
