// Every step kind, by name. Kind modules import only zod and types at load time (adapters load
// their SDKs lazily), and wrap their parameter schemas in z.lazy: a schema is built the first time
// its kind is used, so `cutover validate` builds only the kinds its runbook names.
import type { StepKind } from '../engine/types.js';
import { awsKinds } from './aws/index.js';
import { genericKinds } from './generic/index.js';
import { mysqlKinds } from './mysql/index.js';
import { opsKinds } from './ops/index.js';
import { proxyKinds } from './proxy/index.js';

const all: StepKind[] = [...genericKinds, ...mysqlKinds, ...awsKinds, ...opsKinds, ...proxyKinds];

// What each family loads lazily; the engine preloads it before the first step of a run.
const HEAVY: [prefix: string, load: () => Promise<unknown>][] = [
  ['aws.security-group.', () => import('@aws-sdk/client-ec2')],
  ['aws.route53.', () => import('@aws-sdk/client-route-53')],
  ['aws.rds.', () => import('@aws-sdk/client-rds')],
  ['mysql.', () => import('mysql2/promise')],
  ['smoke.', () => import('mysql2/promise')],
  ['proxy.', () => import('mysql2/promise')],
];
for (const k of all) {
  const heavy = HEAVY.find(([prefix]) => k.kind.startsWith(prefix));
  if (heavy && !k.preload) (k as { preload?: () => Promise<unknown> }).preload = heavy[1];
}
export const kinds: ReadonlyMap<string, StepKind> = new Map(all.map((k) => [k.kind, k]));

export function getKind(name: string): StepKind | undefined {
  return kinds.get(name);
}

export function suggestKind(name: string): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of kinds.keys()) {
    const d = distance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  // Also catch "replication.stop" for "mysql.replication.stop": a suffix match is a strong hint.
  const suffix = [...kinds.keys()].find((k) => k.endsWith(`.${name}`) || name.endsWith(`.${k}`));
  if (suffix) return suffix;
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
