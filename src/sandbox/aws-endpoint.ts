// One HTTP server for EC2, RDS (query protocol) and Route 53 (REST-XML), so unmodified SDK clients
// pointed at CUTOVER_AWS_ENDPOINT work, plus JSON admin routes under /_sandbox/ that let tests
// inject faults, delay INSYNC, read call counters and reset the state to the seed.
import http from 'node:http';
import { sleep } from '../util/sleep.js';
import { type AwsState, type Platform, requestId, seedState, servedRecords } from './aws-state.js';
import { AwsError, QueryParams } from './aws-xml.js';
import { DEFAULT_INSYNC_DELAY_MS } from './config.js';
import { EC2_ACTIONS, EC2_MUTATING, ec2ErrorXml, handleEc2 } from './ec2.js';
import { handleRds, RDS_ACTIONS, rdsErrorXml } from './rds.js';
import {
  handleRoute53,
  ROUTE53_ACTIONS,
  ROUTE53_MUTATING,
  route53ErrorXml,
  route53Operation,
} from './route53.js';

export type Service = 'ec2' | 'route53' | 'rds';
export type FaultMode = 'deny' | 'fail' | 'throttle' | 'delay';

export interface FaultSpec {
  /** `ec2:RevokeSecurityGroupIngress`, `route53:*`, or `*`. */
  action: string;
  mode: FaultMode;
  /** How many matching calls fail; unlimited when absent. */
  count?: number;
  /** Let this many matching calls through before the fault starts. */
  skip?: number;
  /** For mode `delay`: hold the response this long, then answer normally. */
  delayMs?: number;
  /** Override the AWS error code / HTTP status / message the fault answers with. */
  code?: string;
  status?: number;
  message?: string;
}

export interface Fault extends FaultSpec {
  id: number;
  /** Calls that matched so far (including skipped ones). */
  matched: number;
}

export interface CallsReport {
  /** Calls received, by `service:Action`, faulted ones included. */
  calls: Record<string, number>;
  /** Every emulated action that changes state. */
  mutating: string[];
  mutatingCalls: number;
  total: number;
}

export const MUTATING_ACTIONS = [
  ...EC2_MUTATING.map((a) => `ec2:${a}`),
  ...ROUTE53_MUTATING.map((a) => `route53:${a}`),
];
export const EMULATED_ACTIONS = [
  ...EC2_ACTIONS.map((a) => `ec2:${a}`),
  ...ROUTE53_ACTIONS.map((a) => `route53:${a}`),
  ...RDS_ACTIONS.map((a) => `rds:${a}`),
];

const SERVICE_VERSIONS: Record<string, Service> = { '2016-11-15': 'ec2', '2014-10-31': 'rds' };

export class AwsController {
  state: AwsState;
  faults: Fault[] = [];
  /** Awaited after every successful mutating call, before the response is sent. */
  afterMutation?: () => Promise<void>;
  counts = new Map<string, number>();
  private nextFaultId = 1;

  constructor(private seed: { dbPort: number; insyncDelayMs?: number; platform?: Platform }) {
    this.state = seedState(seed);
  }

  get defaultInsyncDelayMs(): number {
    return this.seed.insyncDelayMs ?? DEFAULT_INSYNC_DELAY_MS;
  }

  /** Back to the seed; a platform switches the profile the seed (and later resets) follow. */
  reset(platform?: Platform): void {
    if (platform) this.seed = { ...this.seed, platform };
    this.state = seedState(this.seed);
    this.faults = [];
    this.counts.clear();
  }

  count(action: string): void {
    this.counts.set(action, (this.counts.get(action) ?? 0) + 1);
  }

  report(): CallsReport {
    const calls = Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
    let mutatingCalls = 0;
    let total = 0;
    for (const [a, n] of this.counts) {
      total += n;
      if (MUTATING_ACTIONS.includes(a)) mutatingCalls += n;
    }
    return { calls, mutating: MUTATING_ACTIONS, mutatingCalls, total };
  }

  addFault(spec: FaultSpec): Fault {
    if (
      !spec ||
      typeof spec.action !== 'string' ||
      !['deny', 'fail', 'throttle', 'delay'].includes(spec.mode)
    ) {
      throw new Error(
        'a fault needs { action: "service:Action" | "service:*" | "*", mode: "deny" | "fail" | "throttle" | "delay" }',
      );
    }
    const f: Fault = { ...spec, id: this.nextFaultId++, matched: 0 };
    this.faults.push(f);
    return f;
  }

  /** The fault that applies to this call, if any; consumes one use of it. */
  takeFault(action: string): Fault | undefined {
    const service = action.split(':')[0];
    for (const f of this.faults) {
      if (f.action !== '*' && f.action !== action && f.action !== `${service}:*`) continue;
      f.matched++;
      if (f.skip && f.matched <= f.skip) continue;
      if (f.count !== undefined) {
        f.count--;
        if (f.count <= 0) this.faults = this.faults.filter((x) => x !== f);
      }
      return f;
    }
    return undefined;
  }
}

function faultError(f: Fault, service: Service, action: string): AwsError {
  const arn = 'arn:aws:iam::000000000000:user/sandbox';
  const name = action.split(':')[1];
  const base = {
    deny:
      service === 'ec2'
        ? new AwsError(
            'UnauthorizedOperation',
            `You are not authorized to perform this operation. User: ${arn} is not authorized to perform: ${action} because no identity-based policy allows the ${action} action (sandbox fault)`,
            403,
          )
        : new AwsError(
            'AccessDenied',
            `User: ${arn} is not authorized to perform: ${action} because no identity-based policy allows the ${action} action (sandbox fault)`,
            403,
          ),
    fail:
      service === 'ec2'
        ? new AwsError('InternalError', `An internal error has occurred (sandbox fault on ${name})`, 500)
        : new AwsError(
            'InternalFailure',
            `The request processing has failed because of an unknown error (sandbox fault on ${name})`,
            500,
          ),
    throttle:
      service === 'ec2'
        ? new AwsError('RequestLimitExceeded', 'Request limit exceeded. (sandbox fault)', 503)
        : new AwsError('Throttling', 'Rate exceeded (sandbox fault)', 400),
  }[f.mode as 'deny' | 'fail' | 'throttle'];
  return new AwsError(f.code ?? base.code, f.message ?? base.message, f.status ?? base.status);
}

function serviceOf(req: http.IncomingMessage, p: QueryParams): Service | undefined {
  const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([a-z0-9-]+)\/aws4_request/.exec(
    req.headers.authorization ?? '',
  )?.[1];
  if (scope === 'ec2' || scope === 'rds') return scope;
  return SERVICE_VERSIONS[p.get('Version') ?? ''];
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res(Buffer.concat(chunks).toString('utf8')));
    req.on('error', rej);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function sendXml(res: http.ServerResponse, status: number, reqId: string, body: string): void {
  res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': reqId });
  res.end(body);
}

/** Plain-JSON view of the whole AWS state (also what the DNS server serves now), for tests and captureSandboxState. */
export function stateSnapshot(c: AwsController) {
  const s = c.state;
  return {
    platform: s.platform,
    securityGroups: s.groups,
    hostedZones: s.zones.map((z) => ({
      id: z.id,
      name: z.name,
      privateZone: z.privateZone,
      records: z.records,
      served: servedRecords(s, z),
    })),
    changes: [...s.changes.values()].map((ch) => ({
      id: ch.id,
      zoneId: ch.zoneId,
      submittedAt: ch.submittedAt.toISOString(),
      status: Date.now() >= ch.insyncAt ? 'INSYNC' : 'PENDING',
      comment: ch.comment,
    })),
    dbClusters: s.clusters,
    dbInstances: s.instances,
    insyncDelayMs: s.insyncDelayMs,
  };
}

async function admin(
  c: AwsController,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  body: string,
): Promise<void> {
  const route = `${req.method} ${path.replace(/\/+$/, '')}`;
  let json: any = {};
  if (body.trim()) {
    try {
      json = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { error: 'the body must be JSON' });
    }
  }
  switch (route) {
    case 'GET /_sandbox/health':
      return sendJson(res, 200, { ok: true });
    case 'GET /_sandbox/calls':
      return sendJson(res, 200, c.report());
    case 'DELETE /_sandbox/calls':
    case 'POST /_sandbox/calls/reset':
      c.counts.clear();
      return sendJson(res, 200, c.report());
    case 'GET /_sandbox/faults':
      return sendJson(res, 200, { faults: c.faults });
    case 'POST /_sandbox/faults':
      try {
        return sendJson(res, 201, c.addFault(json as FaultSpec));
      } catch (e) {
        return sendJson(res, 400, { error: (e as Error).message });
      }
    case 'DELETE /_sandbox/faults':
    case 'POST /_sandbox/faults/clear':
      c.faults = [];
      return sendJson(res, 200, { faults: [] });
    case 'GET /_sandbox/insync-delay':
      return sendJson(res, 200, { ms: c.state.insyncDelayMs });
    case 'PUT /_sandbox/insync-delay':
    case 'POST /_sandbox/insync-delay': {
      const ms = Number(json.ms);
      if (!Number.isFinite(ms) || ms < 0)
        return sendJson(res, 400, { error: 'expected { "ms": <non-negative number> }' });
      c.state.insyncDelayMs = ms;
      return sendJson(res, 200, { ms });
    }
    case 'POST /_sandbox/reset': {
      const platform = json.platform;
      if (platform !== undefined && platform !== 'self' && platform !== 'rds')
        return sendJson(res, 400, { error: 'expected { "platform": "self" | "rds" } or no body' });
      c.reset(platform);
      return sendJson(res, 200, { ok: true, platform: c.state.platform });
    }
    case 'GET /_sandbox/state':
      return sendJson(res, 200, stateSnapshot(c));
    default:
      return sendJson(res, 404, {
        error: `no admin route ${route}`,
        routes: [
          'GET /_sandbox/health',
          'GET /_sandbox/calls',
          'POST /_sandbox/calls/reset',
          'GET|POST|DELETE /_sandbox/faults',
          'GET|POST /_sandbox/insync-delay',
          'POST /_sandbox/reset [{ platform: self | rds }]',
          'GET /_sandbox/state',
        ],
      });
  }
}

async function handle(c: AwsController, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = await readBody(req);
  const url = new URL(req.url ?? '/', 'http://sandbox');
  if (url.pathname === '/_sandbox' || url.pathname.startsWith('/_sandbox/'))
    return admin(c, req, res, url.pathname, body);
  const reqId = requestId();
  let service: Service;
  let action: string;
  let run: () => string;
  if (url.pathname.startsWith('/2013-04-01/')) {
    service = 'route53';
    const op = route53Operation(req.method ?? 'GET', url.pathname);
    action = op.action;
    run = () => handleRoute53(op, url.searchParams, body, c.state);
  } else {
    const p = QueryParams.parse(req.method === 'POST' ? body : url.search.slice(1));
    const s = serviceOf(req, p);
    action = p.get('Action') ?? '';
    if (!s || !action) {
      return sendXml(
        res,
        400,
        reqId,
        ec2ErrorXml(
          new AwsError(
            'InvalidAction',
            'The sandbox AWS endpoint could not tell the service or action of this request',
          ),
          reqId,
        ),
      );
    }
    service = s;
    run =
      s === 'ec2' ? () => handleEc2(action, p, c.state, reqId) : () => handleRds(action, p, c.state, reqId);
  }
  const full = `${service}:${action}`;
  c.count(full);
  const errorXml = service === 'ec2' ? ec2ErrorXml : service === 'rds' ? rdsErrorXml : route53ErrorXml;
  const fault = c.takeFault(full);
  if (fault?.mode === 'delay') await sleep(fault.delayMs ?? 1000);
  else if (fault) {
    const e = faultError(fault, service, full);
    return sendXml(res, e.status, reqId, errorXml(e, reqId));
  }
  try {
    const body = run();
    // Effects outside the emulated API (the security-group fence on old) hold when the call returns.
    if (MUTATING_ACTIONS.includes(full)) await c.afterMutation?.();
    sendXml(res, 200, reqId, body);
  } catch (e) {
    const err =
      e instanceof AwsError
        ? e
        : new AwsError(
            service === 'ec2' ? 'InternalError' : 'InternalFailure',
            `sandbox bug: ${(e as Error).message}`,
            500,
          );
    if (!(e instanceof AwsError)) console.error(`[aws] ${full} failed:`, e);
    sendXml(res, err.status, reqId, errorXml(err, reqId));
  }
}

export function createAwsServer(c: AwsController): http.Server {
  return http.createServer((req, res) => {
    handle(c, req, res).catch((e) => {
      console.error('[aws] request failed:', e);
      if (!res.headersSent) sendJson(res, 500, { error: String(e) });
      else res.end();
    });
  });
}
