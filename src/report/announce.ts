// `cutover announce`: the text the comms team sends, from the tool's prediction rather than a guess.
// Start is the time given; end is the predicted high end plus a stated margin, rounded up to the
// minute; what customers see is every client path the runbook puts into maintenance.
import { formatMs, InputError } from '../errors.js';
import { parseDuration } from '../duration.js';
import type { Prediction } from '../rehearse/predict.js';
import type { StepInfo } from '../rehearse/predict.js';

export interface ClientPath {
  name: string;
  url: string;
}

export interface Announcement {
  runbook: string;
  description?: string;
  start: Date;
  end: Date;
  marginMs: number;
  marginText: string;
  prediction: Prediction;
  paths: ClientPath[];
  bypass: boolean;
  timeZone: string;
}

const ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** --at: an ISO time with its zone (a time without one means something else in every office). */
export function parseAt(text: string, now = Date.now()): Date {
  const t = text.trim();
  const ms = ISO.test(t) ? Date.parse(t.replace(' ', 'T')) : Number.NaN;
  if (Number.isNaN(ms))
    throw new InputError(
      'BAD_AT',
      `--at ${text}: expected a time with its zone, e.g. 2026-12-05T22:00Z or 2026-12-05T23:00+01:00`,
    );
  if (ms < now)
    throw new InputError('BAD_AT', `--at ${text}: that time has passed; announce a window to come`);
  return new Date(ms);
}

/** --margin: a duration (10m) or a share of the predicted high end (25%). */
export function parseMargin(text: string, highMs: number): { ms: number; text: string } {
  const pct = /^(\d+(\.\d+)?)%$/.exec(text.trim());
  if (pct) {
    const ms = (Number(pct[1]) / 100) * highMs;
    return { ms, text: `${pct[1]}% of the predicted high end (${formatMs(ms)})` };
  }
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new InputError('BAD_MARGIN', `--margin ${text}: expected a duration (10m) or a percentage (25%)`);
  return { ms, text: formatMs(ms) };
}

export function checkTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return tz;
  } catch {
    throw new InputError('BAD_TIME_ZONE', `--time-zone ${tz}: not a time zone name (e.g. Europe/Paris, UTC)`);
  }
}

/** Client paths the maintenance steps switch (maintenance.enter's paths). */
export function clientPaths(steps: StepInfo[]): { paths: ClientPath[]; bypass: boolean } {
  const paths: ClientPath[] = [];
  let bypass = false;
  for (const s of steps.filter((x) => x.kind === 'maintenance.enter')) {
    for (const p of Array.isArray(s.params.paths) ? s.params.paths : []) {
      const { name, url } = p as { name?: unknown; url?: unknown };
      if (typeof url === 'string' && !paths.some((x) => x.url === url))
        paths.push({ name: typeof name === 'string' ? name : url, url });
    }
    if (s.params.bypass) bypass = true;
  }
  return { paths, bypass };
}

export function buildAnnouncement(o: {
  runbook: string;
  description?: string;
  steps: StepInfo[];
  prediction: Prediction;
  at: Date;
  margin: string;
  timeZone?: string;
}): Announcement {
  const m = parseMargin(o.margin, o.prediction.highMs);
  // Customers are told whole minutes: round the end up, never down.
  const end = new Date(Math.ceil((o.at.getTime() + o.prediction.highMs + m.ms) / 60_000) * 60_000);
  const { paths, bypass } = clientPaths(o.steps);
  return {
    runbook: o.runbook,
    ...(o.description ? { description: o.description } : {}),
    start: o.at,
    end,
    marginMs: Math.round(m.ms),
    marginText: m.text,
    prediction: o.prediction,
    paths,
    bypass,
    timeZone: o.timeZone ?? 'UTC',
  };
}

function when(d: Date, tz: string): string {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    weekday: 'short',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
    timeZoneName: 'short',
  });
  return f.format(d);
}

function minutes(ms: number): string {
  const m = Math.ceil(ms / 60_000);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

export function renderAnnouncement(a: Announcement, format: 'md' | 'text'): string {
  const md = format === 'md';
  const p = a.prediction;
  const h = (s: string) => (md ? `## ${s}` : `${s}\n${'-'.repeat(s.length)}`);
  const li = (s: string) => (md ? `- ${s}` : `  - ${s}`);
  const code = (s: string) => (md ? `\`${s}\`` : s);
  const lines = [
    md ? `# Planned maintenance: ${a.runbook}` : `PLANNED MAINTENANCE: ${a.runbook}`,
    '',
    `${md ? '**Start:**' : 'Start:'} ${when(a.start, a.timeZone)}`,
    `${md ? '**End:**' : 'End:  '} ${when(a.end, a.timeZone)} at the latest (${minutes(a.end.getTime() - a.start.getTime())})`,
    '',
    h('What customers will see'),
    '',
    a.paths.length
      ? `During the window, every client path below shows the maintenance page (HTTP 503) instead of the service:`
      : 'The runbook names no client path for maintenance: list every path under maintenance.enter before announcing.',
    '',
    ...a.paths.map((x) => li(`${x.name}: ${code(x.url)}`)),
    ...(a.paths.length ? [''] : []),
    'Orders and other changes cannot be made until the end of the window; nothing already saved is lost.',
    ...(a.bypass ? ['', 'Our team checks the service through a private bypass before it reopens.'] : []),
    '',
    h('Where the end time comes from'),
    '',
    li(
      `predicted time in maintenance: ${formatMs(p.lowMs)} to ${formatMs(p.highMs)} (cutover's prediction from ${p.rehearsals} rehearsal(s) and this environment's figures)`,
    ),
    li(`margin: ${a.marginText}`),
    li(`end = start + predicted high end + margin, rounded up to the minute`),
  ];
  const assumed = p.parts.filter((x) => x.inWindow && x.source === 'assumed' && x.highMs > 0);
  if (assumed.length)
    lines.push(
      li(`assumed, not measured: ${[...new Set(assumed.map((x) => `${x.stepId} ${x.what}`))].join('; ')}`),
    );
  for (const w of p.warnings) lines.push(li(`warning: ${w}`));
  return `${lines.join('\n')}\n`;
}
