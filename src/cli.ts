// Argument parsing and main(): the only place that prints errors and sets exit codes.
// Command modules are imported lazily so `cutover validate` does not pay for the AWS SDK or mysql2.
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { CutoverError, ExitCode, InputError, RunbookError, formatIssue } from './errors.js';
import { parseDuration } from './duration.js';
import { noteArgvVar, readVarFile } from './runbook/var-file.js';

const HELP_FOOTER = `
Exit codes: 0 success · 1 a step or check failed and everything was rolled back · 2 bad input,
nothing changed · 3 manual action needed (listed) · 4 another run holds the lock.

A cutover, start to finish:
  cutover validate runbooks/sandbox.yaml        check the runbook (no connections made)
  cutover plan runbooks/sandbox.yaml            dry run: reads live state, prints what would change
  cutover run runbooks/sandbox.yaml --execute   the real thing (journal in ./runs/<run-id>/)
  cutover status runs/<run-id>                  where a run stands
  cutover rollback runs/<run-id>                undo a run from its journal
  cutover report runs/<run-id> --format html    timeline for the change ticket
Rehearse locally first: cutover sandbox up && cutover rehearse runbooks/sandbox.yaml
Tell customers what the rehearsals say: cutover announce FILE --at 2026-12-05T22:00Z
Let others watch: --status-port 8080 on run, rehearse, resume, rollback (read-only page)`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function collectVar(value: string, prev: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  // The value is not echoed: a malformed --var may well be a secret pasted without its key.
  if (eq <= 0)
    throw new InputError(
      'BAD_VAR',
      `--var: expected key=value (got ${value.length} characters without a key)`,
    );
  noteArgvVar(value.slice(0, eq));
  return { ...prev, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function collectVarFile(file: string, prev: Record<string, string>): Record<string, string> {
  return { ...prev, ...readVarFile(file) };
}

function durationOption(flag: string) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined)
      throw new InputError('BAD_DURATION', `${flag} ${value}: expected a duration, e.g. 45s`);
    return ms;
  };
}

const R53_HELP =
  'Route 53 change → INSYNC on the target zone, e.g. 40s (default: measured by earlier runs in --runs-dir, else assumed)';

const VAR_HELP =
  'override a runbook parameter (repeatable; a secret one only through --var-file: argv shows in ps)';
const VAR_FILE_HELP = 'KEY=value lines, the same as repeated --var (repeatable; --var wins)';

interface Common {
  var: Record<string, string>;
  runsDir: string;
  json?: boolean;
  yes?: boolean;
  execute?: boolean;
  awsEndpoint?: string;
  profile?: string;
  region?: string;
  plain?: boolean;
  hooksDir?: string;
  statusPort?: number;
  statusHost?: string;
}

function portOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InputError('BAD_PORT', `port ${value}: expected a port number (0-65535)`);
  return n;
}

/** `--status-port`: the read-only status page (run, rehearse, resume, rollback). */
function withStatusFlags(c: Command): Command {
  return c
    .option(
      '--status-port <port>',
      'serve a read-only live status page on this port (off by default)',
      portOption,
    )
    .option(
      '--status-host <address>',
      'address the status page binds to (default 127.0.0.1: this host only)',
    );
}

function withRunFlags(c: Command): Command {
  return c
    .option('--var <key=value>', VAR_HELP, collectVar, {})
    .option('--var-file <file>', VAR_FILE_HELP, collectVarFile)
    .option(
      '--runs-dir <dir>',
      'where run directories (journals) are written',
      process.env.CUTOVER_RUNS_DIR ?? './runs',
    )
    .option('--json', 'machine-readable output: one JSON event per line')
    .option('--plain', 'plain line-per-event output even on a terminal')
    .option('--aws-endpoint <url>', 'send AWS calls here (e.g. the sandbox); also CUTOVER_AWS_ENDPOINT')
    .option('--profile <name>', 'AWS profile')
    .option('--region <region>', 'AWS region')
    .option(
      '--hooks-dir <dir>',
      'run cutover-on-<event> hooks from this directory (overrides the runbook; also CUTOVER_HOOKS_DIR)',
    );
}

async function sessionOptions(o: Common) {
  const { createLifecycle } = await import('./steps/ops/lifecycle.js');
  const hooksOverride = o.hooksDir ?? process.env.CUTOVER_HOOKS_DIR;
  return {
    runsDir: o.runsDir,
    json: !!o.json,
    yes: !!o.yes,
    vars: o.var,
    ...(o.plain ? { render: 'plain' as const } : {}),
    ...(o.statusPort !== undefined
      ? { status: { port: o.statusPort, ...(o.statusHost ? { host: o.statusHost } : {}) } }
      : {}),
    aws: {
      ...((o.awsEndpoint ?? process.env.CUTOVER_AWS_ENDPOINT)
        ? { endpoint: o.awsEndpoint ?? process.env.CUTOVER_AWS_ENDPOINT }
        : {}),
      ...(o.profile ? { profile: o.profile } : {}),
      ...(o.region ? { region: o.region } : {}),
    },
    lifecycle: (p: import('./runbook/validate.js').PreparedRunbook, warn: (m: string) => void) =>
      createLifecycle({
        runbookDir: dirname(p.loaded.file),
        ...(hooksOverride
          ? { hooksDir: resolve(hooksOverride) }
          : p.runbook.hooks?.dir
            ? { hooksDir: p.runbook.hooks.dir }
            : {}),
        ...(p.runbook.notify ? { notify: p.runbook.notify } : {}),
        runbookName: p.runbook.name,
        warn,
        env: p.env,
        secrets: p.secrets,
        hooksInDryRun: process.env.CUTOVER_PLAN_RUN_COMMANDS === '1',
      }),
  };
}

let exitCode = 0;

export function buildProgram(): Command {
  const program = new Command('cutover')
    .description(
      'Zero-downtime MySQL database cutovers from YAML runbooks: checked steps, automatic rollback, dry runs, rehearsals and a tamper-evident journal.',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', HELP_FOOTER)
    .exitOverride()
    // --var-file values sit under --var ones: one map reaches every command.
    .hook('preAction', (_program, action) => {
      const o = action.opts<{ var?: Record<string, string>; varFile?: Record<string, string> }>();
      if (o.varFile) action.setOptionValue('var', { ...o.varFile, ...o.var });
    });

  program
    .command('validate')
    .description(
      'check a runbook: schema, step kinds, references, templating (exit 2 with FILE:LINE:COL on errors)',
    )
    .argument('<file>', 'runbook YAML')
    .option('--var <key=value>', VAR_HELP, collectVar, {})
    .option('--var-file <file>', VAR_FILE_HELP, collectVarFile)
    .option('--strict-env', 'treat unset ${env.X} variables and secrets as errors, as plan and run do')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: { var: Record<string, string>; strictEnv?: boolean; json?: boolean }) => {
      const { prepareRunbookFile } = await import('./runbook/validate.js');
      try {
        const p = prepareRunbookFile(file, { vars: o.var, envStrict: !!o.strictEnv });
        if (o.json)
          console.log(
            JSON.stringify({
              ok: true,
              file,
              name: p.runbook.name,
              steps: p.runbook.steps.length,
              warnings: p.warnings.map(formatIssue),
            }),
          );
        else {
          for (const w of p.warnings) console.error(formatIssue(w));
          console.log(
            `${file}: ok — "${p.runbook.name}", ${plural(p.runbook.steps.length, 'step')}${p.warnings.length ? `, ${plural(p.warnings.length, 'warning')}` : ''}`,
          );
        }
      } catch (e) {
        if (o.json && e instanceof RunbookError) {
          console.log(
            JSON.stringify({
              ok: false,
              file,
              errors: e.issues.filter((i) => i.severity === 'error').map(formatIssue),
              warnings: e.issues.filter((i) => i.severity === 'warning').map(formatIssue),
            }),
          );
          exitCode = ExitCode.badInput;
          return;
        }
        throw e;
      }
    });

  program
    .command('schema')
    .description('print the runbook JSON Schema (for editors: # yaml-language-server: $schema=...)')
    .action(async () => {
      const { runbookJsonSchema } = await import('./runbook/json-schema.js');
      console.log(JSON.stringify(runbookJsonSchema(), null, 2));
    });

  program
    .command('kinds')
    .description(
      "list the step kinds with what they do; with a NAME, that kind's `with:` keys, undo and outputs",
    )
    .argument('[name]', 'a step kind, e.g. mysql.replication.stop')
    .option('--json', 'as JSON')
    .action(async (name: string | undefined, o: { json?: boolean }) => {
      const { kinds, getKind, suggestKind } = await import('./steps/registry.js');
      if (name !== undefined) {
        const k = getKind(name);
        if (!k) {
          const hint = suggestKind(name);
          throw new InputError(
            'UNKNOWN_KIND',
            `unknown step kind "${name}"${hint ? ` — did you mean "${hint}"?` : ''} (\`cutover kinds\` lists them)`,
          );
        }
        const { kindHelp, renderKindHelp } = await import('./runbook/kind-help.js');
        const h = kindHelp(k);
        console.log(o.json ? JSON.stringify(h, null, 2) : renderKindHelp(h));
        return;
      }
      const list = [...kinds.values()].map((k) => ({
        kind: k.kind,
        summary: k.summary,
        readOnly: !!k.readOnly,
        ...(k.writes ? { writes: { tag: k.writes.tag, summary: k.writes.summary } } : {}),
        outputs: k.outputs ?? [],
      }));
      if (o.json) console.log(JSON.stringify(list, null, 2));
      else
        for (const k of list)
          console.log(
            `${k.kind.padEnd(30)} ${k.summary}${k.writes ? ` (not read-only: ${k.writes.summary}; a before/after check of it needs \`writes: ${k.writes.tag}\`)` : k.readOnly ? ' (read-only)' : ''}`,
          );
    });

  withRunFlags(program.command('plan'))
    .description(
      'dry run against the live systems: real reads, recorded writes; prints what each step would change (exit 1 if a check fails)',
    )
    .argument('<file>', 'runbook YAML')
    .option('--route53-propagation <duration>', R53_HELP, durationOption('--route53-propagation'))
    .option(
      '--run-commands',
      "also run the runbook's own commands that a plan otherwise skips (hooks, maintenance statusCommand)",
    )
    .action(async (file: string, o: Common & { route53Propagation?: number; runCommands?: boolean }) => {
      const { runSession } = await import('./session.js');
      // Read by the maintenance kind's snapshot (a plan is otherwise read-only).
      if (o.runCommands) process.env.CUTOVER_PLAN_RUN_COMMANDS = '1';
      else delete process.env.CUTOVER_PLAN_RUN_COMMANDS;
      const r = await runSession({ mode: 'plan', file }, await sessionOptions(o));
      exitCode = r.exitCode;
      const { planPrediction } = await import('./rehearse/window.js');
      await planPrediction(file, r.runDir, o);
    });

  withStatusFlags(withRunFlags(program.command('run')))
    .description('run a runbook for real (requires --execute; without it, see `cutover plan`)')
    .argument('<file>', 'runbook YAML')
    .option('--execute', 'actually make the changes')
    .option('-y, --yes', 'pass approval gates without asking (non-interactive runs)')
    .action(async (file: string, o: Common) => {
      if (!o.execute) {
        const { prepareRunbookFile } = await import('./runbook/validate.js');
        prepareRunbookFile(file, { vars: o.var });
        throw new InputError(
          'NO_EXECUTE',
          `refusing to run without --execute: nothing was changed. Preview with \`cutover plan ${file}\`, then \`cutover run ${file} --execute\``,
        );
      }
      const { runSession } = await import('./session.js');
      const r = await runSession({ mode: 'run', file }, await sessionOptions(o));
      exitCode = r.exitCode;
    });

  withStatusFlags(withRunFlags(program.command('resume')))
    .description(
      'continue an interrupted run from its journal (an in-flight step is verified, not blindly re-applied)',
    )
    .argument('<run-dir>', 'the run directory (runs/<run-id>)')
    .option('-y, --yes', 'pass approval gates without asking')
    .action(async (runDir: string, o: Common) => {
      const { runSession } = await import('./session.js');
      const r = await runSession({ mode: 'resume', runDir }, await sessionOptions(o));
      exitCode = r.exitCode;
    });

  withStatusFlags(withRunFlags(program.command('rollback')))
    .description('undo a finished or interrupted run from its journal, in reverse order')
    .argument('<run-dir>', 'the run directory (runs/<run-id>)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (runDir: string, o: Common) => {
      const { runSession, reopenRun } = await import('./session.js');
      const { state } = reopenRun(runDir, { vars: o.var });
      if (state.pointOfNoReturn && !o.yes) {
        const tty = process.stdin.isTTY && process.stdout.isTTY;
        if (!tty)
          throw new InputError(
            'CONFIRM_NEEDED',
            `${runDir} passed its point of no return ("${state.pointOfNoReturn}"); rolling back may lose writes made since. Re-run with --yes to do it anyway`,
          );
        const confirm = await (await import('./util/confirm.js')).loadConfirm();
        if (
          !(await confirm({
            message: `This run passed its point of no return ("${state.pointOfNoReturn}"). Roll back anyway?`,
            default: false,
          }))
        ) {
          process.stderr.write(
            `cutover: not rolled back at your request: ${runDir} is left as it is (exit 3)\n`,
          );
          exitCode = ExitCode.manualActionNeeded;
          return;
        }
      }
      const r = await runSession({ mode: 'rollback', runDir }, { ...(await sessionOptions(o)), yes: true });
      // The engine ends a requested rollback with 0 when everything was put back, 3 when anything is
      // left for a human: the code printed on its run-end line, never remapped here.
      exitCode = r.exitCode;
    });

  program
    .command('status')
    .description('where a run stands: each step, the maintenance window, what is left to do')
    .argument('[run-dir]', 'the run directory (or --last)')
    .option('--last', 'the newest run under --runs-dir')
    .option('--runs-dir <dir>', 'where --last looks', process.env.CUTOVER_RUNS_DIR ?? './runs')
    .option('--json', 'as JSON')
    .action(async (arg: string | undefined, o: { json?: boolean; last?: boolean; runsDir: string }) => {
      const { runDirArg } = await import('./report/last-run.js');
      const runDir = runDirArg(arg, o);
      const { statusOf, renderStatus } = await import('./report/status.js');
      const s = statusOf(runDir);
      console.log(o.json ? JSON.stringify(s, null, 2) : renderStatus(s));
    });

  program
    .command('log')
    .description('journal tools')
    .command('verify')
    .description(
      'check the journal hash chain and its anchor (the journal key, or --expect-head); names the first bad line (exit 1 if tampered)',
    )
    .argument('<run-dir>', 'the run directory')
    .option('--json', 'as JSON')
    .option('--expect-head <hash>', 'the head hash published for this run: the journal must end there')
    .action(async (runDir: string, o: { json?: boolean; expectHead?: string }) => {
      const { verifyJournal } = await import('./journal/journal.js');
      const { existsSync, lstatSync } = await import('node:fs');
      const jpath = `${runDir}/journal.jsonl`;
      if (!existsSync(jpath) && !lstatSync(jpath, { throwIfNoEntry: false })?.isSymbolicLink())
        throw new InputError('NO_JOURNAL', `${runDir}: no journal.jsonl here`);
      if (o.expectHead !== undefined && !/^[0-9a-f]{64}$/.test(o.expectHead))
        throw new InputError(
          'BAD_HEAD',
          `--expect-head ${o.expectHead.slice(0, 80)}: expected 64 hex characters`,
        );
      const r = verifyJournal(runDir, o.expectHead !== undefined ? { expectHead: o.expectHead } : {});
      if (o.json) console.log(JSON.stringify(r));
      else if (r.ok)
        console.log(
          `${runDir}/journal.jsonl: intact, ${r.records} records, head ${r.headHash} (anchored by ${r.anchor})`,
        );
      else console.log(`${runDir}/journal.jsonl:${r.badLine}: TAMPERED — ${r.reason}`);
      exitCode = r.ok ? 0 : 1;
    });

  program
    .command('report')
    .description('the run as a timeline: Markdown for a ticket, or a self-contained HTML page')
    .argument('[run-dir]', 'the run directory (or --last)')
    .option('--last', 'the newest run under --runs-dir')
    .option('--runs-dir <dir>', 'where --last looks', process.env.CUTOVER_RUNS_DIR ?? './runs')
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(['md', 'markdown', 'html', 'json'])
        .default('md'),
    )
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--serve', 'serve the live status page from the journal (follows a run in progress) until Ctrl-C')
    .option('--port <port>', 'with --serve: the port (default: any free one)', portOption, 0)
    .option('--host <address>', 'with --serve: the address to bind (default 127.0.0.1)')
    .action(
      async (
        arg: string | undefined,
        o: {
          format: string;
          output?: string;
          serve?: boolean;
          port: number;
          host?: string;
          last?: boolean;
          runsDir: string;
        },
      ) => {
        const { runDirArg } = await import('./report/last-run.js');
        const runDir = runDirArg(arg, o);
        if (o.serve) {
          const { existsSync } = await import('node:fs');
          if (!existsSync(`${runDir}/journal.jsonl`))
            throw new InputError('NO_JOURNAL', `${runDir}: no journal.jsonl here`);
          const { serveJournal } = await import('./report/status-page.js');
          const s = await serveJournal(runDir, { port: o.port, ...(o.host ? { host: o.host } : {}) });
          console.error(`status page: ${s.url} (read-only; Ctrl-C to stop)`);
          await new Promise<void>((done) => {
            const stop = () => {
              process.off('SIGINT', stop);
              process.off('SIGTERM', stop);
              void s.stop().then(done);
            };
            process.on('SIGINT', stop);
            process.on('SIGTERM', stop);
          });
          return;
        }
        const { renderReport } = await import('./report/report.js');
        const text = renderReport(
          runDir,
          o.format === 'markdown' ? 'md' : (o.format as 'md' | 'html' | 'json'),
        );
        if (o.output) {
          const { writeFileSync } = await import('node:fs');
          writeFileSync(o.output, text);
          console.error(`report written to ${o.output}`);
        } else process.stdout.write(text);
      },
    );

  program
    .command('iam-policy')
    .description('print the least-privilege IAM policy the runbook needs')
    .argument('<file>', 'runbook YAML')
    .addOption(
      new Option('--mode <mode>', 'for the dry run (reads) or the real run')
        .choices(['plan', 'run'])
        .default('run'),
    )
    .option('--var <key=value>', VAR_HELP, collectVar, {})
    .option('--var-file <file>', VAR_FILE_HELP, collectVarFile)
    .option(
      '--strict',
      'refuse (exit 2) when a resource cannot be named before the run and the policy would allow Resource "*"',
    )
    .action(
      async (file: string, o: { mode: 'plan' | 'run'; var: Record<string, string>; strict?: boolean }) => {
        const { iamPolicyForRunbook } = await import('./report/iam.js');
        const { policy, widened } = await iamPolicyForRunbook(file, o.mode, o.var);
        const ids = [...new Set(widened.map((w) => w.replace(/^step (.*?) \[.*$/s, '$1')))];
        if (widened.length && o.strict)
          throw new InputError(
            'IAM_WIDENED',
            `--strict: ${ids.join(', ')} would be allowed on Resource "*" (a resource not named before the run): name it (set the variable, list groupIds rather than an instance), or drop --strict`,
          );
        // A wider policy than the runbook touches is still a working one: said, not refused.
        for (const w of widened) process.stderr.write(`cutover: warning: ${w}\n`);
        console.log(JSON.stringify(policy, null, 2));
      },
    );

  withStatusFlags(withRunFlags(program.command('rehearse')))
    .description(
      'run the runbook for real in the sandbox or staging under a canary write load, and measure write-unavailability and lost writes',
    )
    .argument('<file>', 'runbook YAML')
    .option(
      '--writers <n>',
      "concurrent canary writers, 1-32 (default: the runbook's rehearsal.load.writers, else 2)",
      (v: string) => {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 32)
          throw new InputError('BAD_WRITERS', `--writers ${v}: expected a whole number from 1 to 32`);
        return n;
      },
    )
    .option('--report <file>', 'also write the HTML report here')
    .option(
      '--production-var-file <file>',
      "production's parameters, for the predicted production window (default: the runbook's own)",
      collectVarFile,
    )
    .option('--route53-propagation <duration>', R53_HELP, durationOption('--route53-propagation'))
    .action(
      async (
        file: string,
        o: Common & {
          writers?: number;
          report?: string;
          productionVarFile?: Record<string, string>;
          route53Propagation?: number;
        },
      ) => {
        const { rehearse } = await import('./rehearse/rehearse.js');
        exitCode = await rehearse(
          file,
          { ...(await sessionOptions(o)), yes: true },
          {
            ...(o.writers !== undefined ? { writers: o.writers } : {}),
            ...(o.report ? { report: o.report } : {}),
            ...(o.productionVarFile ? { productionVars: o.productionVarFile } : {}),
            ...(o.route53Propagation !== undefined ? { route53Ms: o.route53Propagation } : {}),
          },
        );
      },
    );

  program
    .command('announce')
    .description(
      'the maintenance announcement for the comms team: start, end (predicted high end + margin), what customers will see',
    )
    .argument('<file>', 'runbook YAML')
    .requiredOption('--at <time>', 'when maintenance starts, with its zone: 2026-12-05T22:00Z')
    .option('--var <key=value>', VAR_HELP, collectVar, {})
    .option('--var-file <file>', VAR_FILE_HELP, collectVarFile)
    .option(
      '--runs-dir <dir>',
      'where earlier rehearsals and runs are read from',
      process.env.CUTOVER_RUNS_DIR ?? './runs',
    )
    .option('--margin <margin>', 'added to the predicted high end: a duration (10m) or a share (25%)', '25%')
    .addOption(new Option('--format <format>', 'output format').choices(['md', 'text']).default('md'))
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--time-zone <tz>', 'time zone the times are written in (e.g. Europe/Paris)', 'UTC')
    .option('--route53-propagation <duration>', R53_HELP, durationOption('--route53-propagation'))
    .action(
      async (
        file: string,
        o: {
          at: string;
          var: Record<string, string>;
          runsDir: string;
          margin: string;
          format: 'md' | 'text';
          output?: string;
          timeZone: string;
          route53Propagation?: number;
        },
      ) => {
        const { announceText } = await import('./rehearse/window.js');
        const text = announceText(file, o);
        if (o.output) {
          const { writeFileSync } = await import('node:fs');
          writeFileSync(o.output, text);
          console.error(`announcement written to ${o.output}`);
        } else process.stdout.write(text);
      },
    );

  return program;
}

export async function main(argv: string[]): Promise<void> {
  // cutover supports Node 20; the SDK's notice about its future Node 22 floor is noise on an operator's terminal.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // A reader that went away (`cutover status ... | head`, a dropped SSH session) must not turn into
  // an uncaught error that replaces the exit code; during a run the session redirects the output.
  const gone = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'EIO') throw e;
  };
  process.stdout.on('error', gone);
  process.stderr.on('error', gone);
  const program = buildProgram();
  try {
    // Before anything can start a child process: the journal key must not be inherited.
    const { takeKeyFromEnv } = await import('./journal/env-key.js');
    takeKeyFromEnv();
    // The sandbox module pulls in mysql2 and the servers' code: load it only when it can be used
    // (its own command, or help listing the commands), so `cutover validate` starts fast.
    const first = argv.find((a) => !a.startsWith('-'));
    const versionOnly = first === undefined && (argv.includes('--version') || argv.includes('-V'));
    if (first === 'sandbox' || first === 'help' || (first === undefined && !versionOnly)) {
      const { sandboxCommand } = await import('./sandbox/cli.js');
      program.addCommand(sandboxCommand());
    }
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    exitCode = reportError(e, argv.includes('--json'));
  }
  process.exitCode = exitCode;
}

/**
 * One line on stderr for a person; with --json, the same as one JSON object on stdout, so a script
 * reading stdout learns why there is no result.
 */
function reportError(e: unknown, json: boolean): number {
  const said = describeError(e);
  if (said.line !== undefined) process.stderr.write(`${said.line}\n`);
  if (json && said.code !== 'commander.helpDisplayed' && said.exitCode !== 0)
    process.stdout.write(
      `${JSON.stringify({ type: 'error', code: said.code, exitCode: said.exitCode, message: said.message, ...(said.errors ? { errors: said.errors } : {}) })}\n`,
    );
  return said.exitCode;
}

function describeError(e: unknown): {
  code: string;
  exitCode: number;
  message: string;
  line?: string;
  errors?: string[];
} {
  if (e instanceof CommanderError) {
    const done =
      e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help';
    // commander already printed the message
    return {
      code: e.code,
      exitCode: done ? 0 : ExitCode.badInput,
      message: e.message.replace(/^error: /, ''),
    };
  }
  if (e instanceof CutoverError) {
    const errors =
      e instanceof RunbookError ? e.issues.filter((i) => i.severity === 'error').map(formatIssue) : undefined;
    return {
      code: e.code,
      exitCode: e.exitCode,
      message: e.message,
      line: `${e instanceof RunbookError ? '' : 'cutover: '}${e.message}`,
      ...(errors ? { errors } : {}),
    };
  }
  const err = e as { exitCode?: number; message?: string; stack?: string; code?: string };
  if (typeof err?.exitCode === 'number')
    return {
      code: String(err.code ?? 'ERROR'),
      exitCode: err.exitCode,
      message: String(err.message),
      line: `cutover: ${err.message}`,
    };
  const message = err?.message ?? String(e);
  return {
    code: 'INTERNAL',
    exitCode: ExitCode.failedRolledBack,
    message,
    line: `cutover: internal error: ${message}\n${
      process.env.CUTOVER_DEBUG ? err?.stack : '(set CUTOVER_DEBUG=1 for a stack trace, and please report it)'
    }`,
  };
}
