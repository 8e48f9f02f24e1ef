// The least-privilege IAM policy a runbook's steps need: reads for `cutover plan`, reads and writes
// for `cutover run`. Resources are ARNs where the runbook names them ('*' where it cannot, e.g. a
// value that is a step output); conditions the kinds declare (Route 53 record names) are kept.
import type { IamNeed } from '../../engine/types.js';
import { getKind } from '../registry.js';
import type { AwsIamNeed } from './common.js';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export function iamPolicy(steps: { kind: string; params: unknown }[], mode: 'plan' | 'run'): PolicyDocument {
  const needs: AwsIamNeed[] = [];
  for (const step of steps) {
    const kind = getKind(step.kind);
    if (!kind?.iam) continue;
    const parsed = kind.params.safeParse(step.params);
    // Params that only resolve at run time (step outputs) still name what they can.
    const params = parsed.success ? parsed.data : step.params;
    let got: IamNeed[];
    try {
      got = kind.iam(params);
    } catch {
      continue;
    }
    needs.push(...(got as AwsIamNeed[]).filter((n) => mode === 'run' || n.mode === 'read'));
  }

  // One statement per (resources, condition); a '*' resource swallows the narrower ones of its action.
  const wildcard = new Set(
    needs.filter((n) => (n.resources ?? ['*']).includes('*') && !n.condition).flatMap((n) => n.actions),
  );
  const groups = new Map<
    string,
    { actions: Set<string>; resources: string[]; condition?: AwsIamNeed['condition'] }
  >();
  for (const n of needs) {
    const resources = [...new Set(n.resources?.length ? n.resources : ['*'])].sort();
    const actions =
      resources.includes('*') || n.condition ? n.actions : n.actions.filter((a) => !wildcard.has(a));
    if (!actions.length) continue;
    const key = JSON.stringify([resources.includes('*') ? ['*'] : resources, n.condition ?? null]);
    const g = groups.get(key) ?? {
      actions: new Set<string>(),
      resources: resources.includes('*') ? ['*'] : resources,
      ...(n.condition ? { condition: n.condition } : {}),
    };
    for (const a of actions) g.actions.add(a);
    groups.set(key, g);
  }
  // Same actions on different resources read better as one statement with several ARNs.
  const merged = new Map<
    string,
    { actions: string[]; resources: Set<string>; condition?: AwsIamNeed['condition'] }
  >();
  for (const g of groups.values()) {
    const actions = [...g.actions].sort();
    const key = JSON.stringify([actions, g.condition ?? null, g.resources.includes('*')]);
    const m = merged.get(key) ?? {
      actions,
      resources: new Set<string>(),
      ...(g.condition ? { condition: g.condition } : {}),
    };
    for (const r of g.resources) m.resources.add(r);
    merged.set(key, m);
  }
  const statements = [...merged.values()]
    .map((m) => ({ actions: m.actions, resources: [...m.resources].sort(), condition: m.condition }))
    .sort(
      (a, b) =>
        a.actions.join().localeCompare(b.actions.join()) ||
        a.resources.join().localeCompare(b.resources.join()),
    );
  const prefix = mode === 'plan' ? 'CutoverPlan' : 'CutoverRun';
  return {
    Version: '2012-10-17',
    Statement: statements.map((s, i) => ({
      Sid: `${prefix}${i + 1}`,
      Effect: 'Allow',
      Action: s.actions,
      Resource: s.resources,
      ...(s.condition ? { Condition: s.condition } : {}),
    })),
  };
}

// Actions IAM only grants on '*' (no resource-level permissions): '*' there is not a widening.
const UNSCOPED = /^ec2:Describe/;

/**
 * Needs that fell back to Resource '*' because the runbook does not name the resource until run
 * time (a step output, an unset variable): one line each, for `cutover iam-policy` to show (and a
 * strict mode to refuse), since such a policy allows more than the runbook touches.
 */
export function widenedResources(
  steps: { id?: string; kind: string; params: unknown }[],
  mode: 'plan' | 'run',
): string[] {
  const out: string[] = [];
  for (const step of steps) {
    const kind = getKind(step.kind);
    if (!kind?.iam) continue;
    const parsed = kind.params.safeParse(step.params);
    let got: IamNeed[];
    try {
      got = kind.iam(parsed.success ? parsed.data : step.params);
    } catch {
      continue;
    }
    const actions = got
      .filter((n) => (mode === 'run' || n.mode === 'read') && (n.resources ?? ['*']).includes('*'))
      .flatMap((n) => n.actions.filter((a) => !UNSCOPED.test(a)));
    if (actions.length)
      out.push(
        `${step.id ? `step ${step.id} [${step.kind}]` : step.kind}: ${[...new Set(actions)].sort().join(', ')} on Resource "*": the runbook does not name the resource before the run (a step output, an unset variable, or groups found on an instance)`,
      );
  }
  return out;
}
