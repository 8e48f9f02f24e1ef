// The sandbox's long-running Node services in one detached process: the AWS endpoint, the DNS
// server (same in-memory zone data) and the demo app. `up` starts this file with the path of
// services.json; it writes the ready file once every listener is bound, and exits on SIGTERM.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import { dbRouteFile } from './app-ctl.js';
import { AwsController, createAwsServer } from './aws-endpoint.js';
import {
  ACCOUNTS,
  BYPASS_CIDR,
  BYPASS_HEADER,
  DB_NAME,
  PROXY_HOST,
  RECORD_NAME,
  SERVICES_HOST,
  type ServicesConfig,
  sandboxLayout,
} from './config.js';
import { createDemoApp } from './demo-app.js';
import { createDnsServer } from './dns-server.js';
import { startFence } from './fence.js';

export interface RunningServices {
  aws: AwsController;
  close(): Promise<void>;
}

function listen(server: http.Server, port: number, what: string): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', (e) =>
      rej(new Error(`${what} cannot listen on ${SERVICES_HOST}:${port}: ${(e as Error).message}`)),
    );
    server.listen(port, SERVICES_HOST, () => res());
  });
}

export async function startServices(cfg: ServicesConfig): Promise<RunningServices> {
  const aws = new AwsController({
    dbPort: cfg.ports.db,
    insyncDelayMs: cfg.insyncDelayMs,
    platform: cfg.platform ?? 'self',
  });
  const awsServer = createAwsServer(aws);
  const dns = createDnsServer(() => aws.state);
  const app = createDemoApp({
    dnsPort: cfg.ports.dns,
    dbPort: cfg.ports.db,
    recordName: RECORD_NAME,
    dbUser: ACCOUNTS.app.user,
    dbPassword: ACCOUNTS.app.password,
    dbName: DB_NAME,
    maintenanceFile: cfg.maintenanceFile,
    bypassHeader: BYPASS_HEADER,
    bypassToken: cfg.bypassToken,
    bypassCidr: BYPASS_CIDR,
    proxyHost: PROXY_HOST,
    routeFile: dbRouteFile(cfg.dir),
  });
  const fence = startFence(() => aws.state, cfg.ports.db, sandboxLayout(cfg.dir).db.old.socket);
  aws.afterMutation = () => fence.sync();
  // Keep-alive connections from SDK clients would hold close() open for minutes.
  awsServer.keepAliveTimeout = 2000;
  app.server.keepAliveTimeout = 2000;
  await Promise.all([
    listen(awsServer, cfg.ports.aws, 'the AWS endpoint'),
    listen(app.server, cfg.ports.app, 'the demo app'),
    new Promise<void>((res, rej) => {
      dns.once('error', (e) =>
        rej(new Error(`the DNS server cannot bind udp ${SERVICES_HOST}:${cfg.ports.dns}: ${e.message}`)),
      );
      dns.bind(cfg.ports.dns, SERVICES_HOST, () => res());
    }),
  ]);
  return {
    aws,
    async close() {
      const closing = (s: http.Server) =>
        new Promise<void>((res) => {
          s.close(() => res());
          s.closeAllConnections();
        });
      await Promise.all([
        closing(awsServer),
        closing(app.server),
        new Promise<void>((res) => dns.close(() => res())),
        app.close(),
        fence.close(),
      ]);
    },
  };
}

async function main(configPath: string): Promise<void> {
  const cfg = JSON.parse(readFileSync(configPath, 'utf8')) as ServicesConfig;
  const log = (m: string) => console.log(`${new Date().toISOString()} ${m}`);
  let services: RunningServices;
  try {
    services = await startServices(cfg);
  } catch (e) {
    log(`startup failed: ${(e as Error).message}`);
    process.exit(1);
  }
  writeFileSync(cfg.readyFile, `${process.pid}\n`);
  log(
    `AWS endpoint http://${SERVICES_HOST}:${cfg.ports.aws}, DNS udp ${SERVICES_HOST}:${cfg.ports.dns}, demo app http://${SERVICES_HOST}:${cfg.ports.app}`,
  );
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    rmSync(cfg.readyFile, { force: true });
    const timer = setTimeout(() => process.exit(0), 3000);
    timer.unref();
    services.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (e) => log(`uncaught: ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => log(`unhandled rejection: ${(e as Error)?.stack ?? e}`));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const configPath = process.argv[2];
  if (!configPath) {
    console.error('usage: services.js <services.json>');
    process.exit(2);
  }
  void main(configPath);
}
