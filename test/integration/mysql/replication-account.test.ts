// The reverse replica's account is first used after the flip: a wrong password or a missing grant
// found there halts the run past the point of no return. mysql.replication.reverse's preflight
// tries the account before any step, and judges a refusal by the server's own account list
// (src/steps/mysql/replication-account.ts). The runbook is the sandbox's, through the built CLI.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { captureSandboxState } from '../../../src/sandbox/state.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { cli, RUNBOOK, removeTemps, tempDir } from '../cutover/harness.js';

let env: SandboxEnv;
let runsDir: string;
const REFUSED = /refused the replication account/;

beforeAll(async () => {
  env = sandboxEnv();
  runsDir = tempDir('replication-account');
  await resetSandbox(env);
});
afterAll(async () => {
  await resetSandbox(env);
  removeTemps();
});

/** The sandbox runbook with the replication account's entry overridden through the environment. */
const withRepl = (over: Record<string, string>): SandboxEnv => ({ ...env, ...over }) as SandboxEnv;
const plan = (e: SandboxEnv) => cli(e, ['plan', RUNBOOK, '--plain', '--runs-dir', runsDir]);

describe('the replication account is checked before the first step', () => {
  it('a wrong password: the run refuses at preflight, nothing changed', async () => {
    const before = await captureSandboxState(env);
    const r = await cli(withRepl({ SANDBOX_DB_REPL_PASSWORD: 'not-the-password' }), [
      'run',
      RUNBOOK,
      '--execute',
      '--yes',
      '--plain',
      '--runs-dir',
      runsDir,
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(REFUSED);
    expect(r.stdout + r.stderr).toMatch(/covers this host.*check the password/);
    expect(r.stdout + r.stderr).toMatch(/nothing was changed/);
    expect(await captureSandboxState(env)).toEqual(before);
  });

  it('an account without REPLICATION SLAVE: refused by name, with the GRANT', async () => {
    const r = await plan(
      withRepl({
        SANDBOX_DB_REPL_USER: env.SANDBOX_APP_DB_USER,
        SANDBOX_DB_REPL_PASSWORD: env.SANDBOX_APP_DB_PASSWORD,
      }),
    );
    expect(r.stdout + r.stderr).toMatch(
      /\[reverse-replication\].*missing privilege REPLICATION SLAVE.*GRANT REPLICATION SLAVE ON \*\.\* TO app/,
    );
  });

  it('a locked account: refused, said as locked', async () => {
    const c = await rootConnection(env.SANDBOX_NEW_DB_SOCKET);
    try {
      await c.query('SET SESSION sql_log_bin = 0');
      await c.query("CREATE OR REPLACE USER 'repl_locked'@'%' IDENTIFIED BY 'locked-repl-pass' ACCOUNT LOCK");
      await c.query("GRANT REPLICATION SLAVE ON *.* TO 'repl_locked'@'%'");
      const r = await plan(
        withRepl({ SANDBOX_DB_REPL_USER: 'repl_locked', SANDBOX_DB_REPL_PASSWORD: 'locked-repl-pass' }),
      );
      expect(r.stdout + r.stderr).toMatch(
        /\[reverse-replication\].*preflight: .*account repl_locked is locked/,
      );
    } finally {
      await c.query("DROP USER IF EXISTS 'repl_locked'@'%'");
      await c.end();
    }
  });

  it('no such account on the new primary: refused', async () => {
    const r = await plan(withRepl({ SANDBOX_DB_REPL_USER: 'nobody_here' }));
    expect(r.stdout + r.stderr).toMatch(/has no account nobody_here/);
  });

  it('an account limited to the replica’s network: not judged from here, a warning only', async () => {
    const c = await rootConnection(env.SANDBOX_NEW_DB_SOCKET);
    try {
      // Not binlogged: the account exists on new alone, as one made for the reverse direction would.
      await c.query('SET SESSION sql_log_bin = 0');
      await c.query("CREATE OR REPLACE USER 'repl_lan'@'10.9.9.%' IDENTIFIED BY 'lan-only-pass'");
      const r = await plan(
        withRepl({ SANDBOX_DB_REPL_USER: 'repl_lan', SANDBOX_DB_REPL_PASSWORD: 'lan-only-pass' }),
      );
      const out = r.stdout + r.stderr;
      expect(out).not.toMatch(REFUSED);
      expect(out).toMatch(
        /refused repl_lan from 127\.0\.0\.1; its account \(@'10\.9\.9\.%'\) does not cover this host/,
      );
      expect(out).not.toMatch(/\[reverse-replication\].*error: preflight/);
    } finally {
      await c.query("DROP USER IF EXISTS 'repl_lan'@'10.9.9.%'");
      await c.end();
    }
  });

  it('a default schema on the replication entry is not held against it (the replica logs in without one)', async () => {
    const text = readFileSync(RUNBOOK, 'utf8')
      .replace('envFiles: [../.sandbox/env]', `envFiles: [${join(env.SANDBOX_DIR, 'env')}]`)
      .replace(
        '    user: ${env.SANDBOX_DB_REPL_USER}\n',
        '    user: ${env.SANDBOX_DB_REPL_USER}\n    database: mysql\n',
      );
    expect(text).toMatch(/database: mysql/);
    const file = join(tempDir('replication-account-schema'), 'runbook.yaml');
    writeFileSync(file, text);
    const r = await cli(env, ['plan', file, '--plain', '--runs-dir', runsDir]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/replication account|refused repl/);
  });

  it('the sandbox’s own account passes without a word', async () => {
    const r = await plan(env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/replication account|refused repl/);
  });
});
