// Secrets at validation: the string form `password: "${env.X}"` is a secret like { env: X }; a
// secret too short to redact safely (1–3 characters) is refused at its position, never printed.
import { describe, expect, it } from 'vitest';
import { RunbookError } from '../../../src/errors.js';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import type { VarOrigin } from '../../../src/runbook/var-file.js';

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

  it('a password that renders to a value written elsewhere in the runbook is refused where that value is written', () => {
    const issues = issuesOf(() =>
      prep(
        `version: 1
name: secrets
params:
  pw: "Written-In-Runbook"
databases:
  old: { host: old-db.internal, user: cutover, password: "\${params.pw}" }
steps:
  - { id: a, kind: shell.run, with: { command: "true" } }
`,
        {},
      ),
    );
    expect(issues).toEqual([expect.stringMatching(/^4:7 a secret's value is written here in the runbook/)]);
    expect(issues.join('\n')).not.toContain('Written-In-Runbook');
  });

  it('the same value from the environment, or only inside a longer text (an id), is not refused', () => {
    const text = `version: 1
name: secrets
databases:
  old: { host: old-db.internal, user: cutover, password: { env: OLD_PW } }
steps:
  - { id: flipx-marker, kind: shell.run, with: { command: "true" } }
`;
    expect(issuesOf(() => prep(text, { OLD_PW: 'flipx' }))).toEqual([]);
  });

  it('a secret param from --var on argv, or from a var file others can read, is refused at the param', () => {
    const text = `version: 1
name: secrets
params:
  token: { secret: true }
steps:
  - { id: a, kind: shell.run, with: { command: "true" } }
`;
    const withOrigin = (origin: VarOrigin) =>
      issuesOf(() =>
        prepareRunbook(loadRunbookText('/rb/secrets.yaml', text), {
          env: {},
          vars: { token: 'Tok3n-Value' },
          varOrigins: new Map([['token', origin]]),
        }),
      );
    expect(withOrigin({ argv: true })).toEqual([
      expect.stringMatching(/^4:3 secret parameter "token" given with --var: .* pass --var-file FILE$/),
    ]);
    expect(withOrigin({ file: '/op/s.vars', mode: 0o640 })).toEqual([
      expect.stringMatching(
        /^4:3 secret parameter "token" comes from \/op\/s\.vars, which group or others can access \(mode 640\)/,
      ),
    ]);
    expect(withOrigin({ file: '/op/s.vars', mode: 0o600 })).toEqual([]);
  });

  it('a credential header written in the runbook is refused at the header; a reference or template is not', () => {
    const withHeader = (v: string) => `version: 1
name: secrets
steps:
  - id: probe
    kind: http.check
    with: { url: "http://127.0.0.1:9/", headers: { Cookie: ${v} } }
`;
    const issues = issuesOf(() => prep(withHeader('"session=C00kieS3cret"'), {}));
    expect(issues).toEqual([
      expect.stringMatching(/^6:\d+ header "Cookie" is a credential written in the runbook/),
    ]);
    expect(issues.join('\n')).not.toContain('C00kieS3cret');
    expect(issuesOf(() => prep(withHeader('"session=${env.COOKIE}"'), { COOKIE: 'C00kieS3cret' }))).toEqual(
      [],
    );
    expect(issuesOf(() => prep(withHeader('{ env: COOKIE }'), { COOKIE: 'C00kieS3cret' }))).toEqual([]);
  });
});
