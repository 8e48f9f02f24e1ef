import { CutoverError, ExitCode } from '../errors.js';

/**
 * A sandbox failure the CLI prints as one line. Bad input (ports in use, a directory that is not a
 * sandbox) exits 2; anything that needs a human to look (a server that will not start, a missing
 * binary) exits 3.
 */
export class SandboxError extends CutoverError {
  constructor(code: string, message: string, opts: { badInput?: boolean; cause?: unknown } = {}) {
    super(code, message, {
      exitCode: opts.badInput ? ExitCode.badInput : ExitCode.manualActionNeeded,
      cause: opts.cause,
    });
  }
}
