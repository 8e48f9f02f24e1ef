// Before a plan or a run touches anything: every database a step uses must answer, with the
// credentials given and the privileges its steps need. A wrong password or an unreachable host is
// bad input (exit 2) found before the first step, not a failure halfway through the window.
import { parseParams } from './runbook/coerce.js';
import { renderKnown, type Scope } from './runbook/template.js';
import type { PreparedRunbook } from './runbook/validate.js';
import type { PrivilegeCheck } from './steps/mysql/index.js';
import { getKind } from './steps/registry.js';

export async function preflightDatabases(p: PreparedRunbook): Promise<string[]> {
  const scope: Scope = { params: p.params, env: p.env, steps: {} };
  const { mysqlPrivilegeNeeds } = await import('./steps/mysql/index.js');
  const needs = new Map<string, Omit<PrivilegeCheck, 'database'>[]>();
  for (const step of p.runbook.steps) {
    const kind = getKind(step.kind);
    if (!kind?.databases) continue;
    const parsed = parseParams(kind.params, renderKnown(step.with ?? {}, scope));
    if (!parsed.success) continue; // only knowable at run time; the step checks it then
    for (const db of kind.databases(parsed.data)) if (!needs.has(db)) needs.set(db, []);
    for (const c of mysqlPrivilegeNeeds(step.kind, parsed.data as Record<string, unknown>))
      needs.get(c.database)?.push({ need: c.need, doing: `${step.id}: ${c.doing}` });
  }
  const names = [...needs.keys()].filter((n) => p.databases[n]);
  if (!names.length) return [];
  const { checkDatabaseReachable } = await import('./adapters/mysql.js');
  await Promise.all(names.map((n) => checkDatabaseReachable(p.databases[n]!, { needs: needs.get(n)! })));
  return names;
}
