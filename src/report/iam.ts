// `cutover iam-policy`: the AWS permissions a runbook's steps need. Params and env are rendered;
// values that only exist at run time (step outputs) stay templates and become '*' resources.
import { iamPolicy } from '../steps/aws/iam-policy.js';
import { parseParams } from '../runbook/coerce.js';
import { renderKnown, type Scope } from '../runbook/template.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { getKind } from '../steps/registry.js';

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
