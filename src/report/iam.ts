// `cutover iam-policy`: the AWS permissions a runbook needs: each step's kind, its before/after
// checks (run in plan and run alike) and its `rollback:` override (run only by a real run's
// rollback). Params and env are rendered; values that only exist at run time (step outputs) and
// unset variables stay templates or empty, and become '*' resources, which `widened` names.
import { parseParams } from '../runbook/coerce.js';
import type { Step } from '../runbook/schema.js';
import { renderKnown, type Scope } from '../runbook/template.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { iamPolicy, type PolicyDocument, widenedResources } from '../steps/aws/iam-policy.js';
import { getKind } from '../steps/registry.js';

export interface IamCall {
  /** Who makes the calls: "fence-old", "aurora-ready (after check 1)", "fence-old (rollback)". */
  id: string;
  kind: string;
  params: unknown;
}

/** Every kind a plan or run of these steps may call AWS through, with its params rendered as far as known. */
export function iamCalls(steps: readonly Step[], scope: Scope, mode: 'plan' | 'run'): IamCall[] {
  const out: IamCall[] = [];
  const add = (id: string, kind: string, w: Record<string, unknown> | undefined) => {
    const k = getKind(kind);
    if (!k?.iam) return;
    const raw = renderKnown(w ?? {}, scope);
    const parsed = parseParams(k.params, raw);
    out.push({ id, kind, params: parsed.success ? parsed.data : raw });
  };
  for (const s of steps) {
    for (const [i, c] of (s.before ?? []).entries()) add(`${s.id} (before check ${i + 1})`, c.kind, c.with);
    add(s.id, s.kind, s.with);
    for (const [i, c] of (s.after ?? []).entries()) add(`${s.id} (after check ${i + 1})`, c.kind, c.with);
    // A plan never rolls back; a run may, through the override instead of the kind's own undo.
    if (mode === 'run' && s.rollback && s.rollback !== 'none')
      add(`${s.id} (rollback)`, s.rollback.kind, s.rollback.with);
  }
  return out;
}

export interface RunbookIamPolicy {
  policy: PolicyDocument;
  /** One line per step whose resources widen to Resource "*" (named only at run time). */
  widened: string[];
}

export async function iamPolicyForRunbook(
  file: string,
  mode: 'plan' | 'run',
  vars: Record<string, string>,
): Promise<RunbookIamPolicy> {
  const p = prepareRunbookFile(file, { vars });
  const scope: Scope = { params: p.params, env: p.env, steps: {} };
  const calls = iamCalls(p.runbook.steps, scope, mode);
  const widened = calls.flatMap((c) =>
    widenedResources([c], mode).map((line) => {
      const keys = unnamed(c.params);
      return keys.length ? `${line}; not named: ${keys.join(', ')}` : line;
    }),
  );
  return { policy: iamPolicy(calls, mode), widened };
}

/** Params (dotted paths) still a template or empty after rendering: what the operator can set. */
function unnamed(v: unknown, path = ''): string[] {
  if (typeof v === 'string') return v === '' || v.includes('${') ? [path || '(value)'] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => unnamed(x, `${path}[${i}]`));
  if (v && typeof v === 'object')
    return Object.entries(v).flatMap(([k, x]) => unnamed(x, path ? `${path}.${k}` : k));
  return [];
}
