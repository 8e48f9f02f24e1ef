// `cutover sandbox up|down|status`: progress on stderr, results on stdout, failures thrown as
// SandboxError for main() to print as one line with their exit code.
import { Command, Option } from 'commander';
import { DEFAULT_DIR, type SandboxPorts } from './config.js';
import { SandboxError } from './errors.js';
import { readSandboxEnv, resetSandbox, sandboxDown, sandboxStatus, sandboxUp } from './index.js';

const progress = (line: string) => process.stderr.write(`sandbox: ${line}\n`);

function port(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new SandboxError('BAD_PORT', `${flag} must be a port number (1-65535), got "${v}"`, {
        badInput: true,
      });
    return n;
  };
}

export function sandboxCommand(): Command {
  const cmd = new Command('sandbox').description(
    'local rehearsal environment on loopback: two MariaDB servers (old primary → new replica), an AWS-compatible endpoint (EC2, Route 53, RDS), a DNS server and a demo app',
  );

  cmd
    .command('up')
    .description('start the sandbox (idempotent) and write DIR/env; prints the env file path')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .addOption(
      new Option('--db-port <port>', 'MariaDB port on 127.0.0.2 and 127.0.0.3 (default 33306)').argParser(
        port('--db-port'),
      ),
    )
    .addOption(
      new Option('--aws-port <port>', 'AWS endpoint port on 127.0.0.1 (default 4566)').argParser(
        port('--aws-port'),
      ),
    )
    .addOption(
      new Option('--dns-port <port>', 'DNS UDP port on 127.0.0.1 (default 10053)').argParser(
        port('--dns-port'),
      ),
    )
    .addOption(
      new Option('--app-port <port>', 'demo app port on 127.0.0.1 (default 18080)').argParser(
        port('--app-port'),
      ),
    )
    .addOption(
      new Option('--insync-delay <ms>', 'Route 53 PENDING → INSYNC delay (default 1000)').argParser((v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0)
          throw new SandboxError('BAD_DELAY', `--insync-delay must be a number of milliseconds, got "${v}"`, {
            badInput: true,
          });
        return n;
      }),
    )
    .addOption(
      new Option(
        '--platform <platform>',
        'self: self-managed MariaDB (the tool account holds every privilege); rds: shaped like RDS/Aurora (master-user privileges only, mysql.rds_* procedures, rdsadmin heartbeat and binlog rotation, private hosted zone, one security group per server)',
      )
        .choices(['self', 'rds'])
        .default('self'),
    )
    .addOption(
      new Option(
        '--gtid <mode>',
        'on: replication by GTID; off: by binlog file/position (as on many RDS instances)',
      )
        .choices(['on', 'off'])
        .default('on'),
    )
    .addOption(
      new Option(
        '--rds-heartbeat <seconds>',
        'rds: seconds between rdsadmin heartbeat writes and binlog rotations (default 2)',
      ).argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1)
          throw new SandboxError(
            'BAD_HEARTBEAT',
            `--rds-heartbeat must be a whole number of seconds (>= 1), got "${v}"`,
            {
              badInput: true,
            },
          );
        return n;
      }),
    )
    .action(
      async (o: {
        dir: string;
        dbPort?: number;
        awsPort?: number;
        dnsPort?: number;
        appPort?: number;
        insyncDelay?: number;
        platform: 'self' | 'rds';
        gtid: 'on' | 'off';
        rdsHeartbeat?: number;
      }) => {
        const ports: Partial<SandboxPorts> = { db: o.dbPort, aws: o.awsPort, dns: o.dnsPort, app: o.appPort };
        const env = await sandboxUp({
          dir: o.dir,
          ports,
          log: progress,
          platform: o.platform,
          gtid: o.gtid,
          ...(o.rdsHeartbeat !== undefined ? { heartbeatSeconds: o.rdsHeartbeat } : {}),
          ...(o.insyncDelay !== undefined ? { insyncDelayMs: o.insyncDelay } : {}),
        });
        process.stdout.write(`${env.SANDBOX_DIR}/env\n`);
      },
    );

  cmd
    .command('down')
    .description('stop the sandbox processes (by recorded pid) and remove DIR')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      await sandboxDown({ dir: o.dir, log: progress });
    });

  cmd
    .command('reset')
    .description(
      'put a running sandbox back to its seed state (after a run cut it over): databases re-seeded and replicating old → new, DNS, security groups, maintenance off, crontabs',
    )
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .addOption(
      new Option('--gtid <mode>', 'replication by GTID or by file/position (default: as started)').choices([
        'on',
        'off',
      ]),
    )
    .action(async (o: { dir: string; gtid?: 'on' | 'off' }) => {
      const t0 = performance.now();
      const env = readSandboxEnv(o.dir);
      await resetSandbox(env, o.gtid ? { gtid: o.gtid } : {});
      progress(
        `back to the seed state in ${((performance.now() - t0) / 1000).toFixed(1)}s (${env.SANDBOX_DIR})`,
      );
    });

  cmd
    .command('status')
    .description('what runs where')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_DIR)
    .option('--json', 'print the status as JSON')
    .action(async (o: { dir: string; json?: boolean }) => {
      const s = await sandboxStatus({ dir: o.dir });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      if (!s.components.length) {
        process.stdout.write(`no sandbox in ${s.dir} (start it with: cutover sandbox up --dir ${o.dir})\n`);
        return;
      }
      const lines = [`sandbox ${s.dir}: ${s.up ? 'up' : 'NOT fully up'} (started ${s.startedAt})`];
      for (const c of s.components) {
        const state = c.running ? (c.answering ? 'running' : 'running, not answering') : 'stopped';
        lines.push(
          `  ${c.name.padEnd(13)} ${c.address.padEnd(28)} pid ${String(c.pid ?? '-').padEnd(8)} ${state}`,
        );
      }
      if (s.envFile) lines.push(`  env file      ${s.envFile}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  return cmd;
}
