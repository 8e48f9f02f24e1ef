// `cutover iam-policy`: the AWS permissions a runbook's steps need, from each kind's iam() needs.
import { render } from '../runbook/template.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { getKind } from '../steps/registry.js';
import type { IamNeed } from '../engine/types.js';

export async function iamPolicyForRunbook(file: string, mode: 'plan' | 'run', vars: Record<string, string>) {
  const p = prepareRunbookFile(file, { vars });
  const needs: IamNeed[] = [];
  for (const step of p.runbook.steps) {
    const kind = getKind(step.kind)!;
    if (!kind.iam) continue;
    let params: unknown;
    try {
      params = kind.params.parse(render(step.with ?? {}, { params: p.params, env: p.env, steps: {} }));
    } catch {
      params = step.with ?? {}; // step outputs are unknown before a run: resources fall back to '*'
    }
    needs.push(...kind.iam(params).filter((n) => mode === 'run' || n.mode === 'read'));
  }
  const byResources = new Map<string, Set<string>>();
  for (const n of needs) {
    const key = JSON.stringify([...(n.resources ?? ['*'])].sort());
    const set = byResources.get(key) ?? new Set<string>();
    for (const a of n.actions) set.add(a);
    byResources.set(key, set);
  }
  return {
    Version: '2012-10-17',
    Statement: [...byResources.entries()].map(([res, actions], i) => ({
      Sid: `Cutover${mode === 'plan' ? 'Plan' : 'Run'}${i + 1}`,
      Effect: 'Allow',
      Action: [...actions].sort(),
      Resource: JSON.parse(res) as string[],
    })),
  };
}
