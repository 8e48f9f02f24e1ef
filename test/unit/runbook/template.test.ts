import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  quotingFor,
  refsIn,
  render,
  renderString,
  type Scope,
  shellQuote,
  TemplateError,
} from '../../../src/runbook/template.js';

const scope: Scope = {
  params: {
    port: 3306,
    ttl: 0.5,
    on: true,
    name: 'db.shop.internal',
    nothing: null,
    hosts: ['app1', 'app2'],
    nested: { a: { b: 7 } },
  },
  env: { HOME_DIR: '/home/op', EMPTY: '' },
  steps: { lag: { outputs: { lagSeconds: 0.2, status: 'ok', rows: [{ id: 1 }] } } },
};

describe('render: types', () => {
  it('a value that is exactly one expression keeps the referenced type', () => {
    expect(renderString('${params.port}', scope)).toBe(3306);
    expect(renderString('${params.ttl}', scope)).toBe(0.5);
    expect(renderString('${params.on}', scope)).toBe(true);
    expect(renderString('${params.nothing}', scope)).toBeNull();
    expect(renderString('${params.hosts}', scope)).toEqual(['app1', 'app2']);
    expect(renderString('${ params.port }', scope)).toBe(3306);
    expect(renderString('${steps.lag.outputs.lagSeconds}', scope)).toBe(0.2);
    expect(renderString('${steps.lag.outputs.rows}', scope)).toEqual([{ id: 1 }]);
  });

  it('an expression inside text becomes text', () => {
    expect(renderString('port ${params.port}', scope)).toBe('port 3306');
    expect(renderString('${params.port}${params.port}', scope)).toBe('33063306');
    expect(renderString('${params.hosts}!', scope)).toBe('["app1","app2"]!');
    expect(renderString('[${params.nothing}]', scope)).toBe('[]');
    expect(renderString('${env.HOME_DIR}/x', scope)).toBe('/home/op/x');
    expect(renderString('${env.EMPTY}', scope)).toBe('');
  });

  it('digs into nested values', () => {
    expect(renderString('${params.nested.a.b}', scope)).toBe(7);
    expect(() => renderString('${params.nested.a.c}', scope)).toThrow(
      /cannot resolve \$\{params.nested.a.c\}: no "c"/,
    );
  });

  it('renders deep structures and leaves non-strings alone', () => {
    expect(
      render({ a: ['${params.port}', { b: 'x${params.port}' }], n: 5, f: false, z: null }, scope),
    ).toEqual({
      a: [3306, { b: 'x3306' }],
      n: 5,
      f: false,
      z: null,
    });
  });
});

describe('render: $${ escape', () => {
  it('$${ is a literal ${ and is not a reference', () => {
    expect(renderString('echo $${HOME}', scope)).toBe('echo ${HOME}');
    expect(renderString('$${params.port}', scope)).toBe('${params.port}');
    expect(renderString('$${x} ${params.port}', scope)).toBe('${x} 3306');
    expect(refsIn('$${params.nope} ${params.port}')).toEqual([
      { ns: 'params', path: ['port'], text: '${params.port}' },
    ]);
    // Escaped in a shell field too, and not quoted there.
    expect(
      render({ command: 'echo "$${HOME}" ${params.name}' }, scope, quotingFor({ shellFields: ['command'] })),
    ).toEqual({
      command: 'echo "${HOME}" db.shop.internal',
    });
  });
});

describe('render: errors', () => {
  it('names what cannot be resolved', () => {
    const cases: [string, RegExp][] = [
      ['${params.missing}', /unknown parameter "missing" in \$\{params.missing\}/],
      ['${env.NOT_SET_ANYWHERE}', /environment variable NOT_SET_ANYWHERE is not set/],
      ['${steps.later.outputs.x}', /step "later" has no outputs yet/],
      ['${steps.lag.stdout}', /use \$\{steps.lag.outputs.<name>\}/],
      ['${steps.lag.outputs.nope}', /step "lag" has no output "nope"/],
      ['${vars.x}', /unknown namespace "vars"/],
    ];
    for (const [text, msg] of cases) {
      expect(() => renderString(`x ${text}`, scope), text).toThrow(TemplateError);
      expect(() => renderString(`x ${text}`, scope), text).toThrow(msg);
    }
  });
});

describe('shell quoting', () => {
  const bashWords = (command: string): string[] => {
    const r = spawnSync('bash', ['-c', `printf '%s\\n' ${command}`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    return r.stdout.split('\n').slice(0, -1);
  };

  it('a parameter containing "; rm -rf /" is one word, never run', () => {
    const evil: Scope = {
      ...scope,
      params: { ...scope.params, x: 'a; rm -rf / #', y: 'it\'s $(id) `id` "q" $HOME *' },
    };
    const q = quotingFor({ shellFields: ['command'] });
    const out = render({ command: 'echo ${params.x} ${params.y}', other: 'plain ${params.x}' }, evil, q) as {
      command: string;
      other: string;
    };
    expect(out.command).toBe(`echo 'a; rm -rf / #' 'it'\\''s $(id) \`id\` "q" $HOME *'`);
    // Only the declared fields are quoted.
    expect(out.other).toBe('plain a; rm -rf / #');
    // bash sees exactly two words after echo, byte for byte.
    expect(bashWords(out.command.slice('echo '.length))).toEqual([
      'a; rm -rf / #',
      'it\'s $(id) `id` "q" $HOME *',
    ]);
  });

  it('leaves safe words alone and quotes the empty string', () => {
    expect(shellQuote('db.shop.internal')).toBe('db.shop.internal');
    expect(shellQuote('a/b-c_d:1,2=3@x+%')).toBe('a/b-c_d:1,2=3@x+%');
    expect(shellQuote('')).toBe("''");
    expect(bashWords(`x${shellQuote('')}y ${shellQuote('two words')}`)).toEqual(['xy', 'two words']);
  });

  it('whole-expression values in shell fields are quoted text, not typed values', () => {
    const out = render(
      { command: '${params.port}' },
      scope,
      quotingFor({ shellFields: ['command'] }),
    ) as Record<string, unknown>;
    expect(out.command).toBe('3306');
    const list = render(
      { command: '${params.hosts}' },
      scope,
      quotingFor({ shellFields: ['command'] }),
    ) as Record<string, unknown>;
    expect(bashWords(list.command as string)).toEqual(['["app1","app2"]']);
  });

  it('expression fields get JSON literals', () => {
    const out = render(
      { that: "${steps.lag.outputs.status} == 'ok' && ${params.port} > 1" },
      scope,
      quotingFor({ exprFields: ['that'] }),
    );
    expect(out).toEqual({ that: `"ok" == 'ok' && 3306 > 1` });
  });
});
