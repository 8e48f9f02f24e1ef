// Before a plan or a run touches anything. First every database a step uses must answer with the
// credentials given (a wrong password or an unreachable host is bad input, exit 2). Then each
// step's own preflight: read-only checks no earlier step's change can alter (privileges, what the
// platform allows, binlog and GTID settings), so what the servers say today is never learnt in the
// maintenance window. The plan then defers only what truly depends on earlier changes.
import type { StepContext } from './engine/types.js';
import { errorCode, errorMessage } from './errors.js';
import { parseParams } from './runbook/coerce.js';
import type { Step } from './runbook/schema.js';
import { renderKnown, type Scope } from './runbook/template.js';
import type { PreparedRunbook } from './runbook/validate.js';
import { getKind } from './steps/registry.js';

// Stands for a value only an earlier step can give, in keys the kind's preflight does not read.
const LATER = '(known at run time)';

/** The step's params if they render from params and env alone (no earlier step's outputs). */
function knownParams(step: Step, scope: Scope): unknown {
  const kind = getKind(step.kind);
  if (!kind) return undefined;
  let rendered = renderKnown(step.with ?? {}, scope);
  const reads = kind.preflightReads;
  if (reads && rendered && typeof rendered === 'object' && !Array.isArray(rendered))
    rendered = Object.fromEntries(
      Object.entries(rendered).map(([k, v]) =>
        !reads.includes(k) && JSON.stringify(v).includes('${') ? [k, LATER] : [k, v],
      ),
    );
  if (JSON.stringify(rendered).includes('${')) return undefined;
  const parsed = parseParams(kind.params, rendered);
  return parsed.success ? parsed.data : undefined;
}

export async function preflightDatabases(p: PreparedRunbook): Promise<string[]> {
  const scope: Scope = { params: p.params, env: p.env, steps: {} };
  const { credentialsOnly } = await import('./steps/mysql/index.js');
  const used = new Set<string>();
  const loginOnly = new Set<string>();
  for (const step of p.runbook.steps) {
    const kind = getKind(step.kind);
    const params = knownParams(step, scope);
    if (!kind?.databases || params === undefined) continue; // only knowable at run time
    // A replication account is a replica's credentials, often host-restricted: a refusal from here
    // is not bad input. The reverse step's preflight tries it and asks the server (replication-account.ts).
    const creds = credentialsOnly(step.kind, params as Record<string, unknown>);
    for (const db of kind.databases(params)) (creds.includes(db) ? loginOnly : used).add(db);
  }
  const names = [...used].filter((n) => p.databases[n]);
  if (!names.length) return [];
  const { checkDatabaseReachable } = await import('./adapters/mysql.js');
  await Promise.all(names.map((n) => checkDatabaseReachable(p.databases[n]!)));
  return names;
}

export interface PreflightFailure {
  stepId: string;
  code: string;
  message: string;
}

/**
 * Runs `preflight` of every step whose params render without earlier steps' outputs, in runbook
 * order, and returns every failure (a plan wants the whole picture, a run refuses on any).
 */
export async function preflightSteps(
  steps: readonly Step[],
  scope: Scope,
  /** Runs one step's check with its context (the engine adds the step's timeout and abort). */
  run: (step: Step, check: (ctx: StepContext) => Promise<void>) => Promise<void>,
): Promise<PreflightFailure[]> {
  const out: PreflightFailure[] = [];
  for (const step of steps) {
    const kind = getKind(step.kind);
    if (!kind?.preflight) continue;
    const params = knownParams(step, { ...scope, steps: {} });
    if (params === undefined) continue;
    try {
      await run(step, (ctx) => kind.preflight!(ctx, params));
    } catch (e) {
      if (errorCode(e) === 'ABORTED') throw e;
      out.push({ stepId: step.id, code: errorCode(e), message: errorMessage(e) });
    }
  }
  return out;
}

// Failures no earlier step can cure: what the account may do, what the platform allows, what the
// params say. A plan reports them as failures even after steps that recorded writes.
const INDEPENDENT = new Set([
  'PREFLIGHT_FAILED',
  'DB_PRIVILEGE_MISSING',
  'DB_ACCESS_DENIED',
  'DB_BAD_SCHEMA',
  'DB_HOST_NOT_FOUND',
  'READ_ONLY_UNSUPPORTED',
  'BAD_PARAMS',
  'UNKNOWN_DATABASE',
  'PRIVATE_ZONE_NEEDS_RESOLVERS',
  'RESOLVER_CANNOT_SEE_ZONE',
  'DNS_NO_SERVERS',
  'SG_FENCE_ON_TARGET',
  'SG_NONE_ATTACHED',
  'SG_FENCES_NOTHING',
  'AWS_NOT_FOUND',
  'RECORD_NOT_FOUND',
]);

/** In a plan, may this failure be deferred as "depends on an earlier step's change"? */
export function deferrable(e: unknown): boolean {
  return !INDEPENDENT.has(errorCode(e));
}
