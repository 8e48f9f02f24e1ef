// crons.disable / crons.enable: stop scheduled jobs on the application hosts for the cutover (the
// seed's 10:00 step) and start them again. Each host's crontab, cron files and timer states are
// journaled byte for byte before anything changes; jobs are commented out behind a marker (timers
// stopped), so enable is the exact opposite, and undo writes back the journaled bytes. Hosts are
// done one by one: one that cannot be reached fails the step and the hosts already done are put back.
import { z } from 'zod';
import { parseDuration } from '../../duration.js';
import { errorMessage, formatMs, StepError } from '../../errors.js';
import { defineKind, type StepContext, type StepKind, type ValidateContext } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import {
  activeJobLines,
  bytesOf,
  type Content,
  DEFAULT_MARKER,
  disableJobs,
  enableJobs,
  fromText,
  markedLines,
  matchingProcesses,
  PS_SCRIPT,
  parseRead,
  parseTimerStates,
  readScript,
  sameContent,
  TIMER_RE,
  type Target,
  targetLabel,
  textOf,
  timersStateScript,
  timerUnit,
  writeScript,
} from './crontab.js';
import { shq } from './common.js';
import { failed, HostUnreachableError, hostProblem, LOCAL, readOnHost, writeOnHost } from './hosts.js';

const WaitFor = z.lazy(() =>
  z
    .object({
      processPattern: z
        .string()
        .min(1)
        .optional()
        .describe(
          "regular expression matched against running processes' command lines (ps args), e.g. bin/sync",
        ),
      lockFile: z.string().min(1).optional().describe('a path that exists while a job runs'),
      timeout: Duration.describe('how long running jobs may take to finish; past it the step fails'),
      interval: Duration.optional().describe('how often to look (default 1s)'),
    })
    .strict()
    .describe('after disabling, wait for jobs running right now to finish'),
);

const common = {
  hosts: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe('"local", or host names reached with `ssh HOST` through your own ssh config (default [local])'),
  crontab: z
    .union([z.boolean(), z.object({ user: z.string().min(1) }).strict()])
    .optional()
    .describe('the user crontab (crontab -l / crontab FILE); the default when no files or timers are listed'),
  files: z.array(z.string().min(1)).optional().describe('cron files to edit, e.g. /etc/cron.d/shop'),
  timers: z.array(z.string().min(1)).optional().describe('systemd timers (systemctl stop / start)'),
  marker: z
    .string()
    .optional()
    .describe(
      `prefix that comments a job out (default "${DEFAULT_MARKER}"); enable removes exactly this prefix`,
    ),
};

const DisableParams = z.lazy(() => z.object({ ...common, waitFor: WaitFor.optional() }).strict());
const EnableParams = z.lazy(() => z.object(common).strict());
type P = z.infer<typeof DisableParams>;

interface TargetState {
  target: Target;
  before: Content;
}
interface HostState {
  host: string;
  targets: TargetState[];
  timers: { unit: string; state: string }[];
}
export interface CronsSnapshot {
  marker: string;
  hosts: HostState[];
}
type Outputs = {
  hosts: string[];
  /** Jobs commented out (disable) or re-enabled (enable), all hosts together. */
  jobs: number;
  timers: number;
  changes: { host: string; target: string; jobs: number }[];
};

type Direction = 'disable' | 'enable';

function hostsOf(p: P): string[] {
  return p.hosts ?? [LOCAL];
}

function targetsOf(p: P): Target[] {
  const out: Target[] = [];
  const wantCrontab = p.crontab ?? (!p.files?.length && !p.timers?.length);
  if (wantCrontab)
    out.push(typeof p.crontab === 'object' ? { type: 'crontab', user: p.crontab.user } : { type: 'crontab' });
  for (const f of p.files ?? []) out.push({ type: 'file', path: f });
  return out;
}

function unitsOf(p: P): string[] {
  return (p.timers ?? []).map(timerUnit);
}

function transform(dir: Direction, text: string, marker: string) {
  return dir === 'disable' ? disableJobs(text, marker) : enableJobs(text, marker);
}

function validate(p: P, v: ValidateContext, dir: Direction) {
  (p.hosts ?? []).forEach((h, i) => {
    const problem = hostProblem(h);
    if (problem) v.issue(['hosts', i], problem);
  });
  if (new Set(p.hosts ?? []).size !== (p.hosts ?? []).length) v.issue(['hosts'], 'a host is listed twice');
  (p.timers ?? []).forEach((t, i) => {
    if (!TIMER_RE.test(t)) v.issue(['timers', i], `timer ${JSON.stringify(t)} is not a unit name`);
  });
  if (typeof p.crontab === 'object' && !/^[A-Za-z0-9._-]+$/.test(p.crontab.user))
    v.issue(['crontab', 'user'], `user ${JSON.stringify(p.crontab.user)} is not a user name`);
  (p.files ?? []).forEach((f, i) => {
    if (!f.startsWith('/') && !f.startsWith('~') && !f.startsWith('.'))
      v.issue(['files', i], `${f}: give an absolute path (it is read on each host)`, 'warning');
    if (f.includes('\n')) v.issue(['files', i], 'a path cannot hold a newline');
  });
  const marker = p.marker ?? DEFAULT_MARKER;
  if (!marker.startsWith('#') || marker.includes('\n') || marker.trim() === '#')
    v.issue(
      ['marker'],
      'the marker must start with # (cron must read the line as a comment), hold more than #, and fit on one line',
    );
  if (dir === 'disable' && p.waitFor) {
    if (!p.waitFor.processPattern && !p.waitFor.lockFile)
      v.issue(['waitFor'], 'waitFor needs processPattern or lockFile');
    if (p.waitFor.processPattern) {
      try {
        new RegExp(p.waitFor.processPattern);
      } catch (e) {
        v.issue(['waitFor', 'processPattern'], `not a regular expression: ${errorMessage(e)}`);
      }
    }
  }
}

async function readTarget(ctx: StepContext, host: string, t: Target): Promise<Content> {
  const r = await readOnHost(ctx, host, readScript(t));
  if (r.exitCode !== 0) throw failed(host, `reading ${targetLabel(t)}`, r);
  const c = parseRead(r.stdout);
  if (!c)
    throw new StepError('HOST_COMMAND_FAILED', `host ${host}: unexpected output reading ${targetLabel(t)}`, {
      host,
    });
  return c;
}

async function writeTarget(
  ctx: StepContext,
  host: string,
  t: Target,
  c: Content,
  describe: string,
): Promise<void> {
  const r = await writeOnHost(ctx, host, writeScript(t, c.exists), {
    ...(c.exists ? { input: bytesBase64(c) } : {}),
    describe,
  });
  if (r.exitCode !== 0) throw failed(host, `writing ${targetLabel(t)}`, r);
}

function bytesBase64(c: Content): string {
  return c.base64 ?? Buffer.from(c.text ?? '', 'utf8').toString('base64');
}

async function timerStates(
  ctx: StepContext,
  host: string,
  units: string[],
): Promise<{ unit: string; state: string }[]> {
  if (!units.length) return [];
  const r = await readOnHost(ctx, host, timersStateScript(units));
  if (r.exitCode !== 0) throw failed(host, 'reading timer states', r);
  const m = parseTimerStates(r.stdout);
  return units.map((unit) => ({ unit, state: m.get(unit) ?? 'unknown' }));
}

async function systemctl(
  ctx: StepContext,
  host: string,
  verb: 'stop' | 'start',
  units: string[],
): Promise<void> {
  if (!units.length) return;
  const r = await writeOnHost(ctx, host, `systemctl ${verb} -- ${units.map(shq).join(' ')}`, {
    describe: `systemctl ${verb} on ${host}: ${units.join(', ')}`,
  });
  if (r.exitCode !== 0) throw failed(host, `systemctl ${verb} ${units.join(' ')}`, r);
}

/** Puts one host back as the snapshot recorded it; safe to repeat (unchanged targets are skipped). */
async function restoreHost(ctx: StepContext, h: HostState, marker: string, dir: Direction): Promise<void> {
  for (const ts of h.targets) {
    bytesOf(ts.before); // an edited snapshot (digest mismatch) throws before anything is read or written
    const now = await readTarget(ctx, h.host, ts.target);
    if (sameContent(now, ts.before)) continue;
    const text = textOf(ts.before);
    const applied = text === undefined ? undefined : fromText(transform(dir, text, marker).content);
    if (!applied || !sameContent(now, applied))
      ctx.warn(
        `${targetLabel(ts.target)} on ${h.host} changed since the step ran; restoring its content from before the step (the later edit is lost)`,
      );
    await writeTarget(
      ctx,
      h.host,
      ts.target,
      ts.before,
      `cron restore on ${h.host}: ${targetLabel(ts.target)} as before the step`,
    );
  }
  if (h.timers.length) {
    const now = await timerStates(
      ctx,
      h.host,
      h.timers.map((t) => t.unit),
    );
    const isActive = (s: string | undefined) => s === 'active' || s === 'activating';
    const start = h.timers.filter((t, i) => isActive(t.state) && !isActive(now[i]?.state)).map((t) => t.unit);
    const stop = h.timers.filter((t, i) => !isActive(t.state) && isActive(now[i]?.state)).map((t) => t.unit);
    await systemctl(ctx, h.host, 'start', start);
    await systemctl(ctx, h.host, 'stop', stop);
  }
}

async function restoreAll(
  ctx: StepContext,
  hosts: HostState[],
  marker: string,
  dir: Direction,
): Promise<string[]> {
  const problems: string[] = [];
  for (const h of [...hosts].reverse()) {
    try {
      await restoreHost(ctx, h, marker, dir);
    } catch (e) {
      problems.push(errorMessage(e));
    }
  }
  return problems;
}

function jobsRunning(ctx: StepContext, p: P, hosts: string[]) {
  const w = p.waitFor!;
  const pattern = w.processPattern ? new RegExp(w.processPattern) : undefined;
  return async (): Promise<string[]> => {
    const busy: string[] = [];
    for (const host of hosts) {
      if (pattern) {
        const r = await readOnHost(ctx, host, PS_SCRIPT);
        if (r.exitCode !== 0) throw failed(host, 'listing processes', r);
        const procs = matchingProcesses(r.stdout, pattern);
        // Program names only: command lines may carry tokens.
        if (procs.length)
          busy.push(
            `${host}: ${procs.map((x) => `pid ${x.pid} (${(x.args.split(/\s+/)[0] ?? '').split('/').pop()})`).join(', ')}`,
          );
      }
      if (w.lockFile) {
        const r = await readOnHost(
          ctx,
          host,
          `if [ -e ${shq(w.lockFile)} ]; then echo present; else echo absent; fi`,
        );
        if (r.exitCode !== 0) throw failed(host, `looking at ${w.lockFile}`, r);
        if (r.stdout.trim() === 'present') busy.push(`${host}: lock file ${w.lockFile} exists`);
      }
    }
    return busy;
  };
}

function makeKind(dir: Direction): StepKind<P, CronsSnapshot, Outputs> {
  const verb = dir === 'disable' ? 'comment out' : 're-enable';
  return defineKind<P, CronsSnapshot, Outputs>({
    kind: `crons.${dir}`,
    summary:
      dir === 'disable'
        ? 'comment out cron jobs (crontab, cron files) and stop systemd timers on hosts; undo restores the exact previous content'
        : 're-enable cron jobs a crons.disable commented out and start timers; undo restores the exact previous content',
    params: (dir === 'disable' ? DisableParams : EnableParams) as z.ZodType<P>,
    outputs: ['hosts', 'jobs', 'timers', 'changes'],
    validate: (p, v) => validate(p, v, dir),
    describe(p, snap) {
      const marker = p.marker ?? DEFAULT_MARKER;
      const units = unitsOf(p);
      if (!snap) {
        const targets = targetsOf(p).map(targetLabel);
        return [
          ...(targets.length
            ? [`would ${verb} every cron job in ${targets.join(', ')} on ${hostsOf(p).join(', ')}`]
            : []),
          ...(units.length
            ? [
                `would ${dir === 'disable' ? 'stop' : 'start'} ${units.join(', ')} on ${hostsOf(p).join(', ')}`,
              ]
            : []),
        ];
      }
      const lines: string[] = [];
      for (const h of snap.hosts) {
        for (const ts of h.targets) {
          const label = targetLabel(ts.target);
          const text = textOf(ts.before);
          if (!ts.before.exists) lines.push(`${label} on ${h.host} does not exist: nothing to ${dir}`);
          else if (text === undefined) lines.push(`${label} on ${h.host} is not text: left as it is`);
          else {
            const n = transform(dir, text, marker).changed;
            lines.push(
              n
                ? `would ${verb} ${n} cron job(s) in ${label} on ${h.host}`
                : `${label} on ${h.host}: no job to ${dir}`,
            );
          }
        }
        for (const t of h.timers) {
          const active = t.state === 'active';
          if (dir === 'disable')
            lines.push(
              active ? `would stop ${t.unit} on ${h.host}` : `${t.unit} on ${h.host} is already ${t.state}`,
            );
          else
            lines.push(
              active
                ? `${t.unit} on ${h.host} is already active`
                : `would start ${t.unit} on ${h.host} (now ${t.state})`,
            );
        }
      }
      lines.sort();
      if (dir === 'disable' && p.waitFor)
        lines.push(
          `would wait up to ${formatMs(parseDuration(p.waitFor.timeout)!)} for running jobs (${[p.waitFor.processPattern && `processes matching /${p.waitFor.processPattern}/`, p.waitFor.lockFile && `lock file ${p.waitFor.lockFile}`].filter(Boolean).join(', ')}) to finish`,
        );
      return lines;
    },

    async snapshot(ctx, p) {
      const hosts: HostState[] = [];
      for (const host of hostsOf(p)) {
        const targets: TargetState[] = [];
        for (const t of targetsOf(p)) targets.push({ target: t, before: await readTarget(ctx, host, t) });
        hosts.push({ host, targets, timers: await timerStates(ctx, host, unitsOf(p)) });
      }
      return { marker: p.marker ?? DEFAULT_MARKER, hosts };
    },

    async apply(ctx, _p, snap) {
      const changes: Outputs['changes'] = [];
      let timers = 0;
      const touched: HostState[] = [];
      for (const h of snap.hosts) {
        touched.push(h);
        try {
          for (const ts of h.targets) {
            const text = textOf(ts.before);
            if (text === undefined) continue;
            const { content, changed } = transform(dir, text, snap.marker);
            if (!changed) continue;
            const label = targetLabel(ts.target);
            await writeTarget(
              ctx,
              h.host,
              ts.target,
              fromText(content),
              `cron edit on ${h.host}: ${verb} ${changed} job(s) in ${label}`,
            );
            changes.push({ host: h.host, target: label, jobs: changed });
          }
          const units = h.timers
            .filter((t) => (dir === 'disable' ? t.state === 'active' : t.state !== 'active'))
            .map((t) => t.unit);
          await systemctl(ctx, h.host, dir === 'disable' ? 'stop' : 'start', units);
          timers += units.length;
        } catch (e) {
          // One host failing fails the step; the hosts already done (and this one, unless it could not
          // be reached at all) are put back now.
          const back = e instanceof HostUnreachableError ? touched.slice(0, -1) : touched;
          const problems = await restoreAll(ctx, back, snap.marker, dir);
          if (problems.length) ctx.warn(`could not put back every host: ${problems.join('; ')}`);
          throw e;
        }
      }
      return {
        hosts: snap.hosts.map((h) => h.host),
        jobs: changes.reduce((a, c) => a + c.jobs, 0),
        timers,
        changes,
      };
    },

    async verify(ctx, p, snap) {
      const left: string[] = [];
      for (const h of snap.hosts) {
        for (const ts of h.targets) {
          if (textOf(ts.before) === undefined) continue;
          const now = textOf(await readTarget(ctx, h.host, ts.target));
          if (now === undefined) continue;
          const lines = dir === 'disable' ? activeJobLines(now) : markedLines(now, snap.marker);
          if (lines.length) left.push(`${targetLabel(ts.target)} on ${h.host} line(s) ${lines.join(', ')}`);
        }
        const states = await timerStates(
          ctx,
          h.host,
          h.timers.map((t) => t.unit),
        );
        for (const s of states)
          if ((dir === 'disable') === (s.state === 'active'))
            left.push(`${s.unit} on ${h.host} is ${s.state}`);
      }
      if (left.length)
        throw new StepError(
          dir === 'disable' ? 'CRON_STILL_ACTIVE' : 'CRON_STILL_DISABLED',
          `${dir === 'disable' ? 'cron jobs still active' : 'cron jobs still disabled'}: ${left.join('; ')} — something rewrote them after the step`,
        );
      if (dir === 'disable' && p.waitFor) {
        const timeoutMs = parseDuration(p.waitFor.timeout)!;
        const running = jobsRunning(
          ctx,
          p,
          snap.hosts.map((h) => h.host),
        );
        try {
          await ctx.poll({
            what: 'running cron jobs to finish',
            timeoutMs,
            intervalMs: p.waitFor.interval !== undefined ? parseDuration(p.waitFor.interval)! : 1000,
            check: async () => {
              const busy = await running();
              return { done: busy.length === 0, status: busy.join('; ') };
            },
          });
        } catch (e) {
          if ((e as { code?: string }).code !== 'WAIT_TIMEOUT') throw e;
          const busy = await running().catch(() => [] as string[]);
          throw new StepError(
            'CRON_JOBS_STILL_RUNNING',
            `cron jobs still running after ${formatMs(timeoutMs)}: ${busy.join('; ') || 'see the log'} — let them finish (raise waitFor.timeout) or stop them`,
          );
        }
      }
    },

    restoreHint: (_p, snap) =>
      snap
        ? snap.hosts.flatMap((h) => [
            ...h.targets.map(
              (t) =>
                `put back ${targetLabel(t.target)} on ${h.host} as it was before the step (the journal's snapshot holds it; jobs were ${dir === 'disable' ? 'commented out' : 're-enabled'} with marker ${snap.marker})`,
            ),
            ...h.timers.map((t) => `set timer ${t.unit} on ${h.host} back to ${t.state}`),
          ])
        : [],
    async undo(ctx, _p, snap) {
      const problems = await restoreAll(ctx, snap.hosts, snap.marker, dir);
      if (problems.length)
        throw new StepError('CRON_RESTORE_FAILED', `could not restore cron jobs: ${problems.join('; ')}`);
    },
  });
}

export const cronsDisable = makeKind('disable');
export const cronsEnable = makeKind('enable');
