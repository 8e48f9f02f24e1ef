// Secrets at validation: the string form `password: "${env.X}"` is a secret like { env: X }; a
// secret too short to redact safely (1–3 characters) is refused at its position, never printed.
import { describe, expect, it } from 'vitest';
import { RunbookError } from '../../../src/errors.js';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';

const prep = (text: string, env: Record<string, string>) =>
  prepareRunbook(loadRunbookText('/rb/secrets.yaml', text), { env, envStrict: true });

const withDb = (password: string) => `version: 1
name: secrets
databases:
  old: { host: old-db.internal, user: cutover, password: ${password} }
steps:
  - { id: a, kind: shell.run, with: { command: "true" } }
`;

function issuesOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof RunbookError) return e.issues.map((i) => `${i.pos.line}:${i.pos.col} ${i.message}`);
    throw e;
  }
  return [];
}

describe('secrets at validation', () => {
  it('password: "${env.X}" (string form) is redacted like { env: X }', () => {
    const p = prep(withDb('"${env.OLD_PW}"'), { OLD_PW: 'string-form-pw' });
    expect(p.secrets).toContain('string-form-pw');
    expect(p.databases.old!.password).toBe('string-form-pw');
    // The user name (not a secret) does not become one.
    expect(p.secrets).not.toContain('cutover');
  });

  it.each([
    ['{ env: OLD_PW }', { OLD_PW: 'q7' }],
    ['"${env.OLD_PW}"', { OLD_PW: 'q7x' }],
  ])('a 1–3 character password (%s) is refused at its position, its value not printed', (ref, env) => {
    const issues = issuesOf(() => prep(withDb(ref), env));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^4:\d+ this secret is \d characters? long: too short to redact safely/);
    expect(issues[0]).not.toContain(env.OLD_PW);
  });

  it('a short secret param is refused too', () => {
    const issues = issuesOf(() =>
      prep(
        `version: 1
name: secrets
params:
  token: { default: "\${env.TOKEN}", secret: true }
steps:
  - { id: a, kind: shell.run, with: { command: "true" } }
`,
        { TOKEN: 'zz' },
      ),
    );
    expect(issues).toEqual([expect.stringMatching(/^4:\d+ this secret is 2 characters long/)]);
  });

  it('a --var value is literal text, never a template (it cannot read the environment)', () => {
    const p = prepareRunbook(
      loadRunbookText(
        '/rb/vars.yaml',
        `version: 1
name: vars
params: { greeting: hello, home: "\${env.HOME_FOR_TEST}" }
steps:
  - { id: a, kind: shell.run, with: { command: "echo \${params.greeting}" } }
`,
      ),
      {
        env: { HOME_FOR_TEST: '/home/op', AWS_SECRET_ACCESS_KEY: 'k3y' },
        vars: { greeting: '${env.AWS_SECRET_ACCESS_KEY}' },
      },
    );
    expect(p.params.greeting).toBe('${env.AWS_SECRET_ACCESS_KEY}');
    // The runbook's own default is still a template.
    expect(p.params.home).toBe('/home/op');
  });

  it('a validation error that quotes a value never shows a secret in it', () => {
    const issues = issuesOf(() =>
      prep(
        `version: 1
name: secrets
params:
  token: { default: "Sup3rS3cretTok", secret: true }
steps:
  - { id: a, kind: assert, with: { that: "\${params.token} == ((" } }
`,
        {},
      ),
    );
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.join('\n')).not.toContain('Sup3rS3cretTok');
  });
});
