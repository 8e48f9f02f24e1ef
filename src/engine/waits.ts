// ctx.poll, shared by the executor and the step harness of the tests and benches, so kinds are
// exercised with the engine's own abort and deadline semantics.
import { formatMs, StepError } from '../errors.js';
import type { PollOptions, Progress } from './types.js';

/** Checks until done or the deadline (WAIT_TIMEOUT with the last status); abort is checked before each attempt. */
export async function pollUntil<T>(
  opts: PollOptions<T>,
  signal: AbortSignal,
  sleep: (ms: number) => Promise<void>,
  progress: (p: Progress) => void,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    if (signal.aborted) throw signal.reason;
    const r = await opts.check();
    if (r.done) return r.value as T;
    last = r.status ?? last;
    if (Date.now() >= deadline)
      throw new StepError(
        'WAIT_TIMEOUT',
        `${opts.what}: not reached within ${formatMs(opts.timeoutMs)}${last ? ` (last: ${last})` : ''}`,
      );
    progress({ label: `${opts.what}${last ? ` — ${last}` : ''}`, deadline });
    await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - Date.now())));
  }
}
