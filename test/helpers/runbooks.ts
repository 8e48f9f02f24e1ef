// Small builders for runbooks made of generic kinds, written to a temp dir as YAML.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface StepSpec {
  id: string;
  kind: string;
  with?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface RunbookSpec {
  name: string;
  params?: Record<string, unknown>;
  databases?: Record<string, unknown>;
  maintenance?: { budget: string };
  defaults?: Record<string, unknown>;
  steps: StepSpec[];
}

export function runbookYaml(rb: RunbookSpec): string {
  return stringify({ version: 1, ...rb }, { lineWidth: 0 });
}

export function writeRunbook(dir: string, rb: RunbookSpec, file = 'runbook.yaml'): string {
  const p = join(dir, file);
  writeFileSync(p, runbookYaml(rb));
  return p;
}

/** A shell.run step: undo, check, env and cwd go under `with`, anything else on the step. */
export function sh(
  id: string,
  command: string,
  extra: { undo?: string; check?: string; env?: Record<string, string>; cwd?: string } & Record<
    string,
    unknown
  > = {},
): StepSpec {
  const { undo, check, env, cwd, ...rest } = extra;
  return {
    id,
    kind: 'shell.run',
    with: {
      command,
      ...(undo ? { undo } : {}),
      ...(check ? { check } : {}),
      ...(env ? { env } : {}),
      ...(cwd ? { cwd } : {}),
    },
    ...rest,
  };
}
