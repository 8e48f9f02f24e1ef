// CUTOVER_JOURNAL_KEY, read once and removed from the environment so no child process (shell.run,
// hooks) inherits it. Its own module: main() takes it before anything else, and loading the
// anchor (node:crypto) there would cost every command's start.
let envKey: string | undefined;
let envTaken = false;

export function takeKeyFromEnv(): string | undefined {
  if (!envTaken) {
    envTaken = true;
    envKey = process.env.CUTOVER_JOURNAL_KEY;
    delete process.env.CUTOVER_JOURNAL_KEY;
  }
  return envKey;
}

/** Test hook: the next takeKeyFromEnv reads the environment again. */
export function forgetEnvKey(): void {
  envTaken = false;
  envKey = undefined;
}
