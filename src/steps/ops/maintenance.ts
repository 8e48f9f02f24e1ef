// maintenance.enter / maintenance.exit: switch the application's maintenance mode by a command or an
// HTTP call, then prove it from the clients' side. In the field report the maintenance page covered
// the web site but not the mobile apps, which kept writing to the old database for ten minutes; so
// verify asks EVERY listed client path (web, mobile API, admin, workers' endpoints) and fails naming
// the one that still serves normally. It also proves the bypass (a header token, or a source address
// inside the office CIDR) still reaches the real application, so the smoke test the team could not
// run that day is possible. The engine's maintenance budget clock starts and stops with these steps.
import { z } from 'zod';
import type { HttpResponse } from '../../adapters/http.js';
import { parseDuration } from '../../duration.js';
import { errorMessage, formatMs, StepError } from '../../errors.js';
import { defineKind, type StepContext, type StepKind, type ValidateContext } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import { HeaderMap, resolveHeaders, resolveValue, tail, ValueOrEnv } from './common.js';

const Status = z.union([z.number().int(), z.array(z.number().int())]);

const Answer = z.lazy(() =>
  z
    .object({
      status: Status.optional(),
      bodyContains: z.string().optional(),
      bodyMatches: z.string().optional().describe('a regular expression'),
      header: z
        .object({ name: z.string().min(1), contains: z.string().optional() })
        .strict()
        .optional()
        .describe('a response header that must be present (and contain this)'),
    })
    .strict(),
);
type AnswerT = z.infer<typeof Answer>;

export const ClientPath = z.lazy(() =>
  z
    .object({
      name: z.string().min(1).describe('which clients use it: web, mobile-api, admin, workers...'),
      url: z.string().url(),
      method: z.enum(['GET', 'HEAD']).optional(),
      headers: HeaderMap.optional(),
      expect: Answer.optional().describe('the maintenance answer (default: status 503)'),
      normal: Answer.optional().describe(
        'the normal answer (default: a 2xx/3xx status that is not the maintenance answer)',
      ),
      timeout: Duration.optional().describe('per request (default 5s)'),
    })
    .strict(),
);
type PathT = z.infer<typeof ClientPath>;

export const HttpCall = z.lazy(() =>
  z
    .object({
      url: z.string().url(),
      method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional().describe('default POST'),
      headers: HeaderMap.optional(),
      body: z
        .union([z.string(), z.record(z.string(), z.unknown())])
        .optional()
        .describe('a string, or an object sent as JSON'),
      timeout: Duration.optional().describe('default 10s'),
    })
    .strict(),
);
type HttpCallT = z.infer<typeof HttpCall>;

export const Bypass = z.lazy(() =>
  z
    .object({
      header: z
        .object({
          name: z.string().min(1),
          value: ValueOrEnv.describe('the token; { env: NAME } keeps it out of the journal'),
        })
        .strict()
        .optional(),
      localAddress: z
        .string()
        .min(1)
        .optional()
        .describe('a source address inside the bypass CIDR (e.g. the office range) that requests bind to'),
      paths: z
        .array(z.string())
        .optional()
        .describe('names of the paths to try through the bypass (default: all)'),
    })
    .strict(),
);
export type BypassT = z.infer<typeof Bypass>;

const Params = z.lazy(() =>
  z
    .object({
      command: z
        .string()
        .min(1)
        .optional()
        .describe('shell command that switches maintenance (templated values are shell words)'),
      http: HttpCall.optional().describe('HTTP call that switches maintenance'),
      undoCommand: z.string().min(1).optional().describe('shell command that switches it back (undo)'),
      undoHttp: HttpCall.optional().describe('HTTP call that switches it back (undo)'),
      statusCommand: z
        .string()
        .min(1)
        .optional()
        .describe('read-only command printing the current maintenance state'),
      statusHttp: z
        .object({ url: z.string().url(), headers: HeaderMap.optional() })
        .strict()
        .optional()
        .describe('GET that returns the current maintenance state'),
      statusMatches: z
        .string()
        .optional()
        .describe('regular expression the status output (or body) matches while maintenance is on'),
      paths: z
        .array(ClientPath)
        .min(1)
        .describe('EVERY client path: web, mobile API, admin, workers’ endpoints...'),
      bypass: Bypass.optional().describe(
        'how the team still reaches the application during maintenance (for smoke tests)',
      ),
      timeout: Duration.optional().describe('how long the paths may take to show the change (default 30s)'),
      interval: Duration.optional().describe('how often to ask them (default 250ms)'),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

export interface MaintenanceSnapshot {
  /** Maintenance was on before the step (so undo of enter leaves it on, undo of exit puts it back). */
  wasOn: boolean;
  /** How wasOn was found: the status command/endpoint, or asking the client paths. */
  from: 'status' | 'paths';
  status?: string;
  paths: { name: string; status: number | null; inMaintenance: boolean }[];
}

interface Observed {
  name: string;
  via?: string;
  url: string;
  status: number | null;
  latencyMs: number;
  ok: boolean;
  problem?: string;
}

type Direction = 'enter' | 'exit';

// ---------------------------------------------------------------- answers

export function answerProblems(a: AnswerT, r: Pick<HttpResponse, 'status' | 'body' | 'headers'>): string[] {
  const out: string[] = [];
  if (a.status !== undefined) {
    const want = Array.isArray(a.status) ? a.status : [a.status];
    if (!want.includes(r.status)) out.push(`status ${r.status}, expected ${want.join(' or ')}`);
  }
  if (a.bodyContains !== undefined && !r.body.includes(a.bodyContains))
    out.push(`body without ${JSON.stringify(a.bodyContains)}`);
  if (a.bodyMatches !== undefined && !new RegExp(a.bodyMatches).test(r.body))
    out.push(`body not matching /${a.bodyMatches}/`);
  if (a.header) {
    const v = r.headers[a.header.name.toLowerCase()];
    if (v === undefined) out.push(`no ${a.header.name} header`);
    else if (a.header.contains !== undefined && !v.includes(a.header.contains))
      out.push(`${a.header.name} header without ${JSON.stringify(a.header.contains)}`);
  }
  return out;
}

export const DEFAULT_MAINTENANCE_ANSWER: AnswerT = { status: 503 };

export function inMaintenance(
  p: Pick<PathT, 'expect'>,
  r: Pick<HttpResponse, 'status' | 'body' | 'headers'>,
): boolean {
  return answerProblems(p.expect ?? DEFAULT_MAINTENANCE_ANSWER, r).length === 0;
}

/** Why the answer is not the normal one; empty when it is. */
export function normalProblems(
  p: Pick<PathT, 'expect' | 'normal'>,
  r: Pick<HttpResponse, 'status' | 'body' | 'headers'>,
): string[] {
  if (p.normal) return answerProblems(p.normal, r);
  if (inMaintenance(p, r)) return [`status ${r.status}: the maintenance answer`];
  if (r.status < 200 || r.status >= 400) return [`status ${r.status}`];
  return [];
}

function maintenanceProblems(p: PathT, r: Pick<HttpResponse, 'status' | 'body' | 'headers'>): string[] {
  return answerProblems(p.expect ?? DEFAULT_MAINTENANCE_ANSWER, r);
}

// ---------------------------------------------------------------- requests

async function ask(
  ctx: StepContext,
  p: PathT,
  extra: { headers?: Record<string, string>; localAddress?: string } = {},
) {
  const env = ctx.adapters.env.env;
  return ctx.adapters.http.get({
    url: p.url,
    method: p.method ?? 'GET',
    headers: { ...resolveHeaders(p.headers, env, p.name), ...extra.headers },
    ...(extra.localAddress ? { localAddress: extra.localAddress } : {}),
    timeoutMs: p.timeout !== undefined ? parseDuration(p.timeout)! : 5000,
    signal: ctx.signal,
  });
}

async function observe(
  ctx: StepContext,
  p: PathT,
  want: 'maintenance' | 'normal',
  via?: { label: string; headers?: Record<string, string>; localAddress?: string },
): Promise<Observed> {
  const base = { name: p.name, url: p.url, ...(via ? { via: via.label } : {}) };
  try {
    const r = await ask(ctx, p, via ?? {});
    const problems = want === 'maintenance' ? maintenanceProblems(p, r) : normalProblems(p, r);
    return {
      ...base,
      status: r.status,
      latencyMs: Math.round(r.durationMs),
      ok: !problems.length,
      ...(problems.length ? { problem: problems.join(', ') } : {}),
    };
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    return { ...base, status: null, latencyMs: 0, ok: false, problem: errorMessage(e) };
  }
}

function bypassVias(
  ctx: StepContext,
  b: BypassT,
): { label: string; headers?: Record<string, string>; localAddress?: string }[] {
  const out: { label: string; headers?: Record<string, string>; localAddress?: string }[] = [];
  // Each mechanism alone: the office may use one or the other, and each must work by itself.
  if (b.header)
    out.push({
      label: `header ${b.header.name}`,
      headers: {
        [b.header.name]: resolveValue(b.header.value, ctx.adapters.env.env, `bypass header ${b.header.name}`),
      },
    });
  if (b.localAddress) out.push({ label: `source address ${b.localAddress}`, localAddress: b.localAddress });
  return out;
}

/** Every path (and the bypass) as wanted, polled until the deadline; throws naming what is not. */
async function waitForPaths(
  ctx: StepContext,
  p: P,
  want: 'maintenance' | 'normal',
  withBypass: boolean,
): Promise<{ paths: Observed[]; bypass: Observed[] }> {
  const timeoutMs = p.timeout !== undefined ? parseDuration(p.timeout)! : 30_000;
  const intervalMs = p.interval !== undefined ? parseDuration(p.interval)! : 250;
  const bypassPaths = p.paths.filter((x) => !p.bypass?.paths || p.bypass.paths.includes(x.name));
  const vias = withBypass && p.bypass ? bypassVias(ctx, p.bypass) : [];
  let last: { paths: Observed[]; bypass: Observed[] } = { paths: [], bypass: [] };
  const round = async () => {
    const paths = await Promise.all(p.paths.map((x) => observe(ctx, x, want)));
    const bypass = await Promise.all(
      vias.flatMap((v) => bypassPaths.map((x) => observe(ctx, x, 'normal', v))),
    );
    last = { paths, bypass };
    return last;
  };
  try {
    return await ctx.poll({
      what:
        want === 'maintenance'
          ? 'every client path to answer in maintenance'
          : 'every client path to serve normally',
      timeoutMs,
      intervalMs,
      check: async () => {
        const r = await round();
        const bad = [...r.paths, ...r.bypass].filter((x) => !x.ok);
        return {
          done: bad.length === 0,
          value: r,
          status: bad.map((x) => `${x.name}${x.via ? ` via ${x.via}` : ''}: ${x.problem}`).join('; '),
        };
      },
    });
  } catch (e) {
    if ((e as { code?: string }).code !== 'WAIT_TIMEOUT') throw e;
    const after = ` after ${formatMs(timeoutMs)}`;
    const badPaths = last.paths.filter((x) => !x.ok);
    const badBypass = last.bypass.filter((x) => !x.ok);
    const list = (xs: Observed[]) => xs.map((x) => `${x.name} (${x.url}: ${x.problem})`).join('; ');
    if (want === 'maintenance' && badPaths.length)
      throw new StepError(
        'MAINTENANCE_NOT_COVERED',
        `maintenance does not cover ${badPaths.map((x) => x.name).join(', ')}${after}: ${list(badPaths)} — those clients still reach the database; make the maintenance switch cover them`,
        { paths: last.paths, bypass: last.bypass },
      );
    if (want === 'normal' && badPaths.length)
      throw new StepError(
        'MAINTENANCE_STILL_ON',
        `${badPaths.map((x) => x.name).join(', ')} still not serving normally${after}: ${list(badPaths)} — check the maintenance switch`,
        { paths: last.paths },
      );
    throw new StepError(
      'MAINTENANCE_BYPASS_FAILED',
      `the maintenance bypass does not reach the application${after}: ${badBypass.map((x) => `${x.name} via ${x.via} (${x.url}: ${x.problem})`).join('; ')} — smoke tests from behind the bypass would see the maintenance page; check the bypass token/CIDR`,
      { paths: last.paths, bypass: last.bypass },
    );
  }
}

// ---------------------------------------------------------------- the switch

function bodyOf(c: HttpCallT): { body?: string; json: boolean } {
  if (c.body === undefined) return { json: false };
  return typeof c.body === 'string'
    ? { body: c.body, json: false }
    : { body: JSON.stringify(c.body), json: true };
}

async function switchBy(
  ctx: StepContext,
  how: { command?: string; http?: HttpCallT },
  label: string,
): Promise<{ by: 'command' | 'http'; status?: number }> {
  if (how.command) {
    const r = await ctx.adapters.shell.run(how.command, {
      signal: ctx.signal,
      nothrow: true,
      describe: `${how.command} (${label})`,
    });
    if (r.exitCode !== 0)
      throw new StepError(
        'MAINTENANCE_SWITCH_FAILED',
        `${label}: command exited ${r.exitCode}${tail(r.stderr || r.stdout) ? `: ${tail(r.stderr || r.stdout)}` : ''}`,
      );
    return { by: 'command' };
  }
  if (how.http) {
    const c = how.http;
    const { body, json } = bodyOf(c);
    const method = c.method ?? 'POST';
    const headers = {
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...resolveHeaders(c.headers, ctx.adapters.env.env, label),
    };
    const r = await ctx.adapters.http.send({
      url: c.url,
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      timeoutMs: c.timeout !== undefined ? parseDuration(c.timeout)! : 10_000,
      signal: ctx.signal,
      describe: `${c.url} (${label})`,
    });
    if (r.status >= 400)
      throw new StepError(
        'MAINTENANCE_SWITCH_FAILED',
        `${label}: ${method} ${c.url} answered ${r.status}${tail(r.body, 1, 200) ? `: ${tail(r.body, 1, 200)}` : ''}`,
      );
    return { by: 'http', status: r.status };
  }
  throw new StepError('MAINTENANCE_NO_SWITCH', `${label}: no command or http call given`);
}

// ---------------------------------------------------------------- the kinds

function validate(p: P, v: ValidateContext, dir: Direction) {
  if (!p.command === !p.http)
    v.issue([], 'give exactly one of command or http (how maintenance is switched)');
  if (p.undoCommand && p.undoHttp) v.issue(['undoHttp'], 'give undoCommand or undoHttp, not both');
  if (!p.undoCommand && !p.undoHttp)
    v.issue(
      [],
      `no undoCommand or undoHttp: a rollback could not switch maintenance ${dir === 'enter' ? 'off' : 'back on'}`,
      'warning',
    );
  if ((p.statusCommand || p.statusHttp) && !p.statusMatches)
    v.issue(
      ['statusMatches'],
      'statusMatches is needed to read the status output (a regular expression matching "on")',
    );
  if (p.statusCommand && p.statusHttp) v.issue(['statusHttp'], 'give statusCommand or statusHttp, not both');
  const regexes: [(string | number)[], string | undefined][] = [[['statusMatches'], p.statusMatches]];
  p.paths.forEach((x, i) => {
    regexes.push(
      [['paths', i, 'expect', 'bodyMatches'], x.expect?.bodyMatches],
      [['paths', i, 'normal', 'bodyMatches'], x.normal?.bodyMatches],
    );
  });
  for (const [path, re] of regexes) {
    if (re === undefined) continue;
    try {
      new RegExp(re);
    } catch (e) {
      v.issue(path, `not a regular expression: ${errorMessage(e)}`);
    }
  }
  const names = p.paths.map((x) => x.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) v.issue(['paths', i, 'name'], `path name ${n} is used twice`);
  });
  if (p.paths.length === 1 && dir === 'enter')
    v.issue(
      ['paths'],
      'only one client path is checked: list every way clients reach the application (web, mobile API, admin, workers) — the mobile apps were the ones maintenance missed',
      'warning',
    );
  if (p.bypass) {
    if (!p.bypass.header && !p.bypass.localAddress)
      v.issue(['bypass'], 'bypass needs header or localAddress');
    (p.bypass.paths ?? []).forEach((n, i) => {
      if (!names.includes(n))
        v.issue(['bypass', 'paths', i], `no path named ${n} (paths: ${names.join(', ')})`);
    });
  } else if (dir === 'enter')
    v.issue(
      ['paths'],
      'no bypass: nobody will be able to smoke test the application while it is in maintenance',
      'warning',
    );
}

function makeKind(dir: Direction): StepKind<P, MaintenanceSnapshot, Record<string, unknown>> {
  const on = dir === 'enter';
  const target = on ? 'maintenance' : 'normal';
  const reverse = on ? 'normal' : 'maintenance';
  return defineKind<P, MaintenanceSnapshot, Record<string, unknown>>({
    kind: `maintenance.${dir}`,
    summary: on
      ? 'switch maintenance on, then verify every client path answers in maintenance and the bypass reaches the application'
      : 'switch maintenance off, then verify every client path serves normally again',
    params: Params,
    maintenance: dir,
    outputs: ['wasOn', 'switchedBy', 'paths', 'bypass'],
    shellFields: ['command', 'undoCommand', 'statusCommand'],
    validate: (p, v) => validate(p, v, dir),
    describe(p, snap) {
      const how = p.command ? `run ${p.command}` : `${p.http?.method ?? 'POST'} ${p.http?.url}`;
      const lines = [`would switch maintenance ${on ? 'on' : 'off'}: ${how}`];
      if (snap)
        lines.push(
          `maintenance is ${snap.wasOn ? 'on' : 'off'} now (from ${snap.from === 'status' ? 'the status' : 'the client paths'})`,
        );
      lines.push(
        `would check that ${p.paths.map((x) => `${x.name} (${x.url})`).join(', ')} ${on ? 'answer in maintenance' : 'serve normally'}`,
      );
      if (on && p.bypass)
        lines.push(
          `would check that the bypass (${[p.bypass.header && `header ${p.bypass.header.name}`, p.bypass.localAddress && `source address ${p.bypass.localAddress}`].filter(Boolean).join(', ')}) reaches the application`,
        );
      const undo = p.undoCommand
        ? `run ${p.undoCommand}`
        : p.undoHttp
          ? `${p.undoHttp.method ?? 'POST'} ${p.undoHttp.url}`
          : undefined;
      lines.push(
        undo ? `undo would ${undo}` : `undo: none given (switch maintenance ${on ? 'off' : 'on'} by hand)`,
      );
      return lines;
    },

    async snapshot(ctx, p) {
      // A plan reads only: the status command is the author's, run only with `plan --run-commands`.
      const skipCommand = ctx.dryRun && !!p.statusCommand && process.env.CUTOVER_PLAN_RUN_COMMANDS !== '1';
      if (skipCommand)
        ctx.warn(
          'plan: statusCommand not run (a plan runs no author command; --run-commands runs it); the paths decide',
        );
      if ((p.statusCommand && !skipCommand) || p.statusHttp) {
        let text: string;
        if (p.statusCommand) {
          const r = await ctx.adapters.shell.read(p.statusCommand, { signal: ctx.signal, nothrow: true });
          if (r.exitCode !== 0)
            throw new StepError(
              'MAINTENANCE_STATUS_FAILED',
              `maintenance status command exited ${r.exitCode}: ${tail(r.stderr || r.stdout)}`,
            );
          text = r.stdout;
        } else {
          const r = await ctx.adapters.http.get({
            url: p.statusHttp!.url,
            headers: resolveHeaders(p.statusHttp!.headers, ctx.adapters.env.env, 'maintenance status') ?? {},
            timeoutMs: 10_000,
            signal: ctx.signal,
          });
          if (r.status >= 400)
            throw new StepError(
              'MAINTENANCE_STATUS_FAILED',
              `maintenance status ${p.statusHttp!.url} answered ${r.status}`,
            );
          text = r.body;
        }
        const paths = await Promise.all(p.paths.map((x) => observe(ctx, x, 'maintenance')));
        return {
          wasOn: new RegExp(p.statusMatches ?? '(?!)').test(text),
          from: 'status',
          status: text.trim().slice(0, 500),
          paths: paths.map((x) => ({ name: x.name, status: x.status, inMaintenance: x.ok })),
        };
      }
      // No status reader: the clients' view decides. "On" only when every path shows maintenance.
      const paths = await Promise.all(p.paths.map((x) => observe(ctx, x, 'maintenance')));
      return {
        wasOn: paths.every((x) => x.ok),
        from: 'paths',
        paths: paths.map((x) => ({ name: x.name, status: x.status, inMaintenance: x.ok })),
      };
    },

    async apply(ctx, p, snap) {
      const r = await switchBy(
        ctx,
        { command: p.command, http: p.http },
        `switching maintenance ${on ? 'on' : 'off'}`,
      );
      return {
        wasOn: snap.wasOn,
        switchedBy: r.by,
        ...(r.status !== undefined ? { switchStatus: r.status } : {}),
      };
    },

    async verify(ctx, p, _snap, outputs) {
      const r = await waitForPaths(ctx, p, target, on);
      ctx.log(
        `${r.paths.map((x) => `${x.name}: ${x.status}`).join(', ')}${r.bypass.length ? `; bypass: ${r.bypass.map((x) => `${x.name} via ${x.via}: ${x.status}`).join(', ')}` : ''}`,
      );
      // The engine journals this same outputs object after verify: what was seen goes on record.
      if (outputs && typeof outputs === 'object') {
        outputs.paths = r.paths.map(({ name, url, status, latencyMs }) => ({ name, url, status, latencyMs }));
        if (on)
          outputs.bypass = r.bypass.map(({ name, via, status, latencyMs }) => ({
            name,
            via,
            status,
            latencyMs,
          }));
      }
    },

    restoreHint(p, snap) {
      const back = on ? 'off' : 'back on';
      if (snap?.wasOn === on)
        return [`nothing: maintenance was already ${on ? 'on' : 'off'} before the step`];
      const how = p.undoCommand
        ? `: ${p.undoCommand}`
        : p.undoHttp
          ? `: ${p.undoHttp.method ?? 'POST'} ${p.undoHttp.url}`
          : ' by hand (the step has no undoCommand or undoHttp)';
      return [`switch maintenance ${back}${how} (was switched ${on ? 'on' : 'off'})`];
    },
    async undo(ctx, p, snap) {
      if (snap.wasOn === on) {
        ctx.log(`maintenance was already ${on ? 'on' : 'off'} before the step: left ${on ? 'on' : 'off'}`);
        return;
      }
      if (!p.undoCommand && !p.undoHttp)
        throw new StepError(
          'MAINTENANCE_NO_UNDO',
          `no undoCommand or undoHttp: switch maintenance ${on ? 'off' : 'back on'} by hand`,
        );
      await switchBy(
        ctx,
        { command: p.undoCommand, http: p.undoHttp },
        `switching maintenance back ${on ? 'off' : 'on'}`,
      );
      await waitForPaths(ctx, p, reverse, false);
    },
  });
}

export const maintenanceEnter = makeKind('enter');
export const maintenanceExit = makeKind('exit');
