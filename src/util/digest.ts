// node:crypto loaded on first use: the runbook loader and the kinds need a digest only when a run
// records one, and loading crypto up front costs `cutover validate` ~4 ms of its start.
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);
let crypto: typeof Crypto | undefined;
const lib = (): typeof Crypto => {
  crypto ??= load('node:crypto') as typeof Crypto;
  return crypto;
};

export function sha256Hex(data: string | Buffer): string {
  return lib().createHash('sha256').update(data).digest('hex');
}

export function randomHex(bytes: number): string {
  return lib().randomBytes(bytes).toString('hex');
}
