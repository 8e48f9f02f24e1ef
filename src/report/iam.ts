// `cutover iam-policy`: the AWS permissions a runbook's steps need. Params and env are rendered;
// values that only exist at run time (step outputs) stay templates and become '*' resources.
import { iamPolicy } from '../steps/aws/iam-policy.js';
import { parseParams } from '../runbook/coerce.js';
import { renderString, type Scope } from '../runbook/template.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { getKind } from '../steps/registry.js';

function renderKnown(v: unknown, scope: Scope): unknown {
  if (typeof v === 'string') {
    try {
      return renderString(v, scope);
    } catch {
      return v;
    }
  }
  if (Array.isArray(v)) return v.map((x) => renderKnown(x, scope));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderKnown(x, scope)]));
  return v;
}

export async function iamPolicyForRunbook(file: string, mode: 'plan' | 'run', vars: Record<string, string>) {
  const p = prepareRunbookFile(file, { vars });
  const scope: Scope = { params: p.params, env: p.env, steps: {} };
  const steps = p.runbook.steps
    .filter((s) => getKind(s.kind)?.iam)
    .map((s) => {
      const raw = renderKnown(s.with ?? {}, scope);
      const parsed = parseParams(getKind(s.kind)!.params, raw);
      return { kind: s.kind, params: parsed.success ? parsed.data : raw };
    });
  return iamPolicy(steps, mode);
}
