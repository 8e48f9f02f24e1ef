// `cutover report --format html`: one self-contained page (inline CSS and SVG, no script, no font,
// no image) a reviewer reads in two minutes. Everything from the journal is untrusted text: it goes
// through esc(), and the CSP forbids any fetch should something slip through anyway.
import { type Prediction, renderPrediction } from '../rehearse/predict.js';
import { formatMs } from '../errors.js';
import type { ResourceChange } from './changes.js';
import type { ReportModel, ReportStep } from './report.js';

const esc = (v: unknown): string =>
  String(v).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const TONE: Record<string, 'ok' | 'warn' | 'bad' | 'info'> = {
  succeeded: 'ok',
  planned: 'info',
  'rolled-back': 'warn',
  paused: 'warn',
  interrupted: 'warn',
};
/** Bar fill by how far the step got before any undo. */
const BAR: Record<string, string> = {
  done: '#2e7d32',
  failed: '#c62828',
  'in-flight': '#f9a825',
  planned: '#1565c0',
};
const UNDO = '#6a4fb3';
const UNDO_FAILED = '#7f0000';

const offset = (ms: number | undefined) => (ms === undefined ? '' : `+${formatMs(ms)}`);
const utc = (iso: string) => iso.replace('T', ' ').replace('Z', ' UTC');
/** The zone of the machine rendering the report: the reader's "local". */
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const localClock = (iso: string) =>
  new Intl.DateTimeFormat('en-GB', {
    timeZone: ZONE,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
    timeZoneName: 'short',
  }).format(new Date(iso));
/** A clock time: ISO UTC, then the same moment in the local zone. */
const when = (iso: string) =>
  `<time datetime="${esc(iso)}">${esc(iso)}</time> <span class="local">(${esc(localClock(iso))}, ${esc(ZONE)})</span>`;
/** UTC time of day, for table cells: 23:52:47.005Z. */
const tod = (iso: string | undefined) => (iso ? iso.slice(11) : '');
/** The UTC time of day at an offset into the run. */
const clockAt = (m: ReportModel, ms: number) => tod(new Date(Date.parse(m.startedAt) + ms).toISOString());

function pill(status: string): string {
  return `<span class="pill s-${esc(status.replace(/[^a-z-]/g, ''))}">${esc(status)}</span>`;
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
const list = (x: unknown) =>
  x === ''
    ? '<span class="muted">(empty)</span>'
    : !Array.isArray(x)
      ? `<code>${esc(x)}</code>`
      : x.length
        ? x.map((y) => `<code>${esc(y)}</code>`).join(' ')
        : '<span class="muted">(empty list)</span>';

/** Flat objects as a key/value table (what most snapshots and outputs are), anything deeper as JSON. */
function value(v: unknown): string {
  if (v === undefined) return '<p class="muted">(none)</p>';
  if (isPlain(v) && Object.keys(v).length === 0) return '<p class="muted">(empty)</p>';
  if (
    isPlain(v) &&
    Object.values(v).every((x) => isScalar(x) || (Array.isArray(x) && x.every(isScalar) && x.length <= 8))
  )
    return `<table class="kv">${Object.entries(v)
      .map(([k, x]) => `<tr><th>${esc(k)}</th><td>${list(x)}</td></tr>`)
      .join('')}</table>`;
  return `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;
}

// ------------------------------------------------------------------------------------ timeline

function niceStep(span: number): number {
  const raw = span / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((f) => f * p >= raw) ?? 10) * p;
}

const tick = (ms: number) =>
  ms === 0 ? '0' : ms < 1000 ? `${ms}ms` : ms < 60_000 ? `${+(ms / 1000).toFixed(2)}s` : formatMs(ms);

function timeline(m: ReportModel): string {
  const W = 1000;
  const L = 180;
  const R = 24;
  const TOP = 30;
  const ROW = 28;
  const mEnd = m.maintenance && m.budgetMs !== undefined ? m.maintenance.startMs + m.budgetMs : 0;
  // A budget far beyond the run would squash every bar into the left edge: keep the axis on the
  // run and mark the budget at the edge instead.
  const runEnd = Math.max(m.totalMs, m.maintenance?.endMs ?? 0, 1);
  const budgetOnScale = mEnd > 0 && mEnd <= runEnd * 1.5;
  const span = budgetOnScale ? Math.max(runEnd, mEnd) : runEnd;
  const x = (ms: number) => L + (Math.max(0, ms) / span) * (W - L - R);
  const rowsEnd = TOP + m.steps.length * ROW;
  const markers: { ms: number; label: string; color: string; dash?: string }[] = [];
  if (m.pointOfNoReturn)
    markers.push({
      ms: m.pointOfNoReturn.atMs,
      label: `point of no return (${m.pointOfNoReturn.stepId}) at ${clockAt(m, m.pointOfNoReturn.atMs)}`,
      color: '#222',
    });
  if (m.rollback)
    markers.push({
      ms: m.rollback.atMs,
      label: `rollback started at ${clockAt(m, m.rollback.atMs)}`,
      color: UNDO,
      dash: '6 3',
    });
  for (const r of m.resumedAtMs)
    markers.push({ ms: r, label: `resumed at ${clockAt(m, r)}`, color: '#666', dash: '2 3' });
  let budget: (typeof markers)[number] | undefined;
  if (m.maintenance && m.budgetMs !== undefined) {
    const over = (m.maintenance.durationMs ?? 0) > m.budgetMs;
    budget = {
      ms: budgetOnScale ? mEnd : span,
      label: `budget ${formatMs(m.budgetMs)}${over ? ' EXCEEDED' : ''}${budgetOnScale ? '' : ` — ends at +${formatMs(mEnd)}, off this scale`}`,
      color: over ? '#d50000' : '#8d6e00',
      dash: '5 3',
    };
    markers.push(budget);
  }
  const H = rowsEnd + 10 + markers.length * 16;
  const out: string[] = [
    `<svg id="timeline-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="timeline of the run">`,
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eceff1"/><line x1="0" y1="0" x2="0" y2="6" stroke="#78909c" stroke-width="3"/></pattern></defs>',
  ];
  m.steps.forEach((_, i) => {
    if (i % 2) out.push(`<rect x="0" y="${TOP + i * ROW}" width="${W}" height="${ROW}" fill="#f6f8fa"/>`);
  });
  if (m.maintenance) {
    const a = x(m.maintenance.startMs);
    const b = x(m.maintenance.endMs ?? m.totalMs);
    const t = `maintenance ${m.maintenance.durationMs !== undefined ? formatMs(m.maintenance.durationMs) : ''}${m.maintenance.open ? ' (no exit recorded)' : ''}`;
    out.push(
      `<rect class="maintenance" x="${a}" y="${TOP - 4}" width="${Math.max(2, b - a)}" height="${rowsEnd - TOP + 8}" fill="#ffb300" fill-opacity="0.16" stroke="#ffb300" stroke-opacity="0.6"${m.maintenance.open ? ' stroke-dasharray="4 3"' : ''}><title>${esc(t)}</title></rect>`,
      `<text x="${a + 3}" y="${TOP - 6}" class="mlabel">${esc(t)}</text>`,
    );
    // The part of the window past its budget, in red.
    if (budget && x(mEnd) < b)
      out.push(
        `<rect x="${x(mEnd)}" y="${TOP - 4}" width="${b - x(mEnd)}" height="${rowsEnd - TOP + 8}" fill="#d50000" fill-opacity="0.12"/>`,
      );
  }
  const step = niceStep(span);
  for (let t = 0; t <= span + 1e-9; t += step) {
    out.push(
      `<line x1="${x(t)}" y1="${TOP - 2}" x2="${x(t)}" y2="${rowsEnd}" stroke="#d0d7de" stroke-width="0.6"/><text x="${x(t)}" y="12" class="tick">${esc(tick(Math.round(t)))}</text>`,
    );
  }
  m.steps.forEach((s, i) => {
    const y = TOP + i * ROW;
    const id = s.id.length > 24 ? `${s.id.slice(0, 23)}…` : s.id;
    out.push(
      `<text x="8" y="${y + 17}" class="lbl"><title>${esc(`${s.id} (${s.kind})`)}</title>${esc(id)}</text>`,
    );
    if (s.startMs === undefined) {
      out.push(`<text x="${L + 4}" y="${y + 17}" class="none">not run</text>`);
      return;
    }
    const end = s.endMs ?? s.undo?.startMs ?? m.totalMs;
    const a = x(s.startMs);
    const w = Math.max(2, x(end) - a);
    const fill = BAR[s.ranTo ?? s.status] ?? '#90a4ae';
    const title = `${s.id} (${s.kind}): ${s.ranTo ?? s.status}, ${offset(s.startMs)} → ${offset(end)}${s.durationMs !== undefined ? ` (${formatMs(s.durationMs)})` : ''}${s.error ? ` — ${s.error}` : ''}`;
    out.push(
      `<rect class="bar" data-step="${esc(s.id)}" data-status="${esc(s.ranTo ?? s.status)}" x="${a}" y="${y + 4}" width="${w}" height="13" rx="2" fill="${fill}"><title>${esc(title)}</title></rect>`,
    );
    // Checks and the snapshot come before the change itself: drawn paler.
    if (s.applyStartMs !== undefined && s.applyStartMs > s.startMs)
      out.push(
        `<rect x="${a}" y="${y + 4}" width="${Math.min(w, x(s.applyStartMs) - a)}" height="13" fill="#fff" fill-opacity="0.45"><title>before checks and snapshot</title></rect>`,
      );
    for (const r of s.retries)
      out.push(
        `<rect class="wait" x="${x(r.atMs)}" y="${y + 4}" width="${Math.max(2, x(r.atMs + r.delayMs) - x(r.atMs))}" height="13" fill="url(#hatch)"><title>${esc(`attempt ${r.attempt} failed, waiting ${formatMs(r.delayMs)} before retrying: ${r.error ?? ''}`)}</title></rect>`,
      );
    for (const c of s.checks)
      out.push(
        `<circle cx="${x(c.atMs)}" cy="${y + 10.5}" r="3" fill="${c.ok ? '#fff' : '#ff1744'}" stroke="#263238" stroke-width="1"><title>${esc(`${c.phase} check ${c.check}: ${c.ok ? 'passed' : `FAILED ${c.error ?? ''}`}`)}</title></circle>`,
      );
    if (s.undo) {
      const ua = x(s.undo.startMs);
      const ue = s.undo.endMs ?? m.totalMs;
      out.push(
        `<rect class="undo" data-step="${esc(s.id)}" x="${ua}" y="${y + 19}" width="${Math.max(2, x(ue) - ua)}" height="6" rx="1" fill="${s.undo.ok ? UNDO : UNDO_FAILED}"><title>${esc(`undo of ${s.id}: ${s.undo.ok ? 'done' : `FAILED ${s.undo.error ?? ''}`} ${offset(s.undo.startMs)} → ${offset(ue)}`)}</title></rect>`,
      );
    }
  });
  markers.forEach((mk, i) => {
    const mx = x(mk.ms);
    const ly = rowsEnd + 14 + i * 16;
    const anchor = mx > W * 0.7 ? 'end' : 'start';
    out.push(
      `<line class="marker" x1="${mx}" y1="${TOP - 4}" x2="${mx}" y2="${ly - 10}" stroke="${mk.color}" stroke-width="${mk === budget ? 2 : 1.5}"${mk.dash ? ` stroke-dasharray="${mk.dash}"` : ''}/>`,
      `<text x="${mx + (anchor === 'end' ? -4 : 4)}" y="${ly}" text-anchor="${anchor}" class="mk" fill="${mk.color}">${esc(`${mk.label} ${offset(mk.ms)}`)}</text>`,
    );
  });
  out.push(`<line x1="${L}" y1="${TOP - 4}" x2="${L}" y2="${rowsEnd}" stroke="#8c959f"/></svg>`);
  return out.join('\n');
}

const LEGEND = [
  ['done', BAR.done!],
  ['failed', BAR.failed!],
  ['in flight / interrupted', BAR['in-flight']!],
  ['undo', UNDO],
  ['undo failed', UNDO_FAILED],
  ['retry wait', 'url'],
  ['maintenance window', '#ffe082'],
]
  .map(
    ([l, c]) =>
      `<span><i style="background:${c === 'url' ? 'repeating-linear-gradient(45deg,#78909c 0 2px,#eceff1 2px 5px)' : c}"></i>${l}</span>`,
  )
  .join('');

// ------------------------------------------------------------------------------------ sections

const LABELS: Record<string, string> = {
  writeUnavailableMs: 'write-unavailability',
  lostWrites: 'acknowledged writes lost',
  acknowledgedWrites: 'acknowledged writes',
  failedWriteAttempts: 'failed write attempts',
  maintenanceMs: 'time in maintenance',
  predictedWindowMs: 'predicted window here (high end)',
  rehearsalsSeen: 'rehearsals it is based on',
  stepDurationsMs: 'step durations',
  exitCode: 'exit status',
};
const label = (k: string) =>
  LABELS[k] ??
  k
    .replace(/Ms$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();
const fmtField = (k: string, v: unknown): string =>
  typeof v === 'number' && /Ms$/.test(k)
    ? `${esc(formatMs(v))} <span class="muted">(${esc(v)} ms)</span>`
    : isPlain(v) && Object.values(v).every((x) => typeof x === 'number')
      ? Object.entries(v)
          .map(([a, b]) => `<code>${esc(a)}</code> ${esc(/Ms$/.test(k) ? formatMs(b as number) : b)}`)
          .join(' · ')
      : isScalar(v)
        ? esc(v)
        : Array.isArray(v) && v.every(isScalar)
          ? list(v)
          : value(v);

function rehearsal(m: ReportModel): string {
  if (!m.rehearsal) return '';
  // The production prediction has its own block below; the rest are one row each.
  const rows = Object.entries(m.rehearsal)
    .filter(
      ([k]) => !['runDir', 'production', 'productionIsRehearsed', 'predicted', 'environmentMs'].includes(k),
    )
    .map(
      ([k, v]) =>
        `<tr${k === 'lostWrites' && Number(v) > 0 ? ' class="bad"' : ''}><th>${esc(label(k))}</th><td>${fmtField(k, v)}</td></tr>`,
    );
  const info = Object.entries(m.rehearsalInfo ?? {}).map(
    ([k, v]) => `<tr><th>${esc(label(k))}</th><td>${fmtField(k, v)}</td></tr>`,
  );
  const prod = m.rehearsal.production as Prediction | undefined;
  const predicted = prod
    ? `<h3>${m.rehearsal.productionIsRehearsed ? 'Predicted window (the environment rehearsed)' : 'Predicted production window'}</h3><pre class="prediction">${esc(renderPrediction(prod, 'Predicted').trim())}</pre>`
    : '';
  return `<section id="rehearsal"><h2>Rehearsal under load</h2><table class="kv wide">${rows.join('')}${info.join('')}</table>${predicted}</section>`;
}

function attention(m: ReportModel): string {
  const items: string[] = [];
  for (const l of m.leftovers)
    items.push(
      `<li class="bad"><b>${esc(l.stepId)}</b> (${esc(l.kind)}): ${esc(l.problem)}${l.change.length ? `<ul>${l.change.map((c) => `<li><code>${esc(c)}</code></li>`).join('')}</ul>` : ''}</li>`,
    );
  for (const s of m.steps) {
    for (const c of s.checks.filter((c) => !c.ok))
      items.push(
        `<li class="bad">failed ${esc(c.phase)} check <b>${esc(c.check)}</b> of <b>${esc(s.id)}</b> at ${esc(offset(c.atMs))}: ${esc(c.error ?? '')}</li>`,
      );
    if (s.undo && !s.undo.ok)
      items.push(
        `<li class="bad">undo of <b>${esc(s.id)}</b> ${s.undo.endMs === undefined ? 'never finished' : `failed: ${esc(s.undo.error ?? '')}`}</li>`,
      );
    for (const r of s.retries)
      items.push(
        `<li class="warn"><b>${esc(s.id)}</b> attempt ${esc(r.attempt)} failed, retried after ${esc(formatMs(r.delayMs))}: ${esc(r.error ?? '')}</li>`,
      );
  }
  for (const w of m.warnings)
    items.push(
      `<li class="warn">${w.stepId ? `<b>${esc(w.stepId)}</b>: ` : ''}${esc(w.message)} <span class="muted">${esc(offset(w.atMs))}</span></li>`,
    );
  return `<section id="attention"><h2>Warnings and failed checks (${items.length})</h2>${items.length ? `<ul class="att">${items.join('')}</ul>` : '<p class="muted">None: no warning, no failed check, no retry, nothing left for a human.</p>'}</section>`;
}

function stepTable(m: ReportModel): string {
  const rows = m.steps.map(
    (s, i) =>
      `<tr><td>${i + 1}</td><td><b>${esc(s.id)}</b>${s.id === m.pointOfNoReturn?.stepId ? ' <span class="tag">point of no return</span>' : ''}</td><td><code>${esc(s.kind)}</code></td><td>${pill(s.status)}${s.undoSkipped ? ` <span class="muted">(${esc(s.undoSkipped)})</span>` : ''}</td><td class="num">${esc(offset(s.startMs))}</td><td class="num clock">${esc(s.startMs === undefined ? '' : clockAt(m, s.startMs))}</td><td class="num">${s.durationMs !== undefined ? esc(formatMs(s.durationMs)) : ''}</td><td class="num">${s.undo?.endMs !== undefined ? esc(formatMs(s.undo.endMs - s.undo.startMs)) : ''}</td><td class="err">${esc(s.error ?? '')}</td></tr>`,
  );
  return `<section id="steps"><h2>Steps</h2><table class="steps"><thead><tr><th>#</th><th>step</th><th>kind</th><th>status</th><th>start</th><th>clock (UTC)</th><th>duration</th><th>undo</th><th>error</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

const OUTCOME: Record<ResourceChange['outcome'], string> = {
  restored: 'restored',
  'in place': 'in place',
  'undo failed': 'undo failed',
  'left in place': 'left in place',
  'not finished': 'not finished',
};

/** Lines of one side, those the other side lacks marked removed (−) or added (+) by CSS: copied text stays the line. */
function side(lines: string[], other: string[], mark: 'del' | 'add'): string {
  if (!lines.length) return '<p class="muted">(none)</p>';
  const o = new Set(other);
  return `<ul class="lines">${lines
    .map((l) =>
      o.has(l) ? `<li><code>${esc(l)}</code></li>` : `<li class="${mark}"><code>${esc(l)}</code></li>`,
    )
    .join('')}</ul>`;
}

function now(c: ResourceChange): string {
  switch (c.outcome) {
    case 'restored':
      return `<p class="restored">↩ restored to <b>before</b>${c.restoredAt ? ` at ${when(c.restoredAt)}` : ''}${c.restoredBy ? ` by <span class="who">${esc(c.restoredBy)}</span>` : ''}</p>`;
    case 'in place':
      return '<p>still <b>after</b> (the change is in place)</p>';
    case 'undo failed':
      return '<p class="badtext">undo FAILED: somewhere between after and before — see Warnings</p>';
    case 'left in place':
      return '<p>left as <b>after</b> by the rollback, on purpose</p>';
    default:
      return '<p class="badtext">the step stopped mid-change: check the resource</p>';
  }
}

function changes(m: ReportModel): string {
  const res = m.resources.map(
    (c) =>
      `<div class="res" data-step="${esc(c.stepId)}" data-outcome="${esc(c.outcome)}"><h3>${esc(c.resource)} <span class="pill o-${esc(c.outcome.replace(/ /g, '-'))}">${esc(OUTCOME[c.outcome])}</span> <span class="muted">step <b>${esc(c.stepId)}</b> <code>${esc(c.kind)}</code></span></h3><table class="diff"><thead><tr><th>before</th><th>after the step</th><th>now</th></tr></thead><tbody><tr><td>${side(c.before, c.after, 'del')}</td><td>${side(c.after, c.before, 'add')}</td><td>${now(c)}</td></tr></tbody></table>${c.note ? `<p class="muted note">${esc(c.note)}</p>` : ''}</div>`,
  );
  const byId = new Map(m.steps.map((s) => [s.id, s]));
  const raw = m.changes.map((c) => {
    const s = byId.get(c.stepId);
    const after = s?.status === 'undone' ? '<p class="muted">undone: restored to the state before</p>' : '';
    return `<details class="change" open><summary><b>${esc(c.stepId)}</b> <code>${esc(s?.kind ?? '')}</code> ${pill(s?.status ?? '')}</summary><div class="ba"><div><h4>before</h4>${value(c.snapshot)}</div><div class="arrow">→</div><div><h4>after</h4>${c.outputs === undefined ? '<p class="muted">(the step did not complete)</p>' : value(c.outputs)}${after}</div></div></details>`;
  });
  const none =
    '<p class="muted">No step recorded a snapshot (read-only kinds and shell.run do not): what each step ran and returned is under Step details.</p>';
  return `<section id="changes"><h2>What changed, per resource</h2>${res.join('')}${raw.length ? `${res.length ? '<h3>Other steps, as they recorded it</h3>' : ''}${raw.join('')}` : ''}${res.length || raw.length ? '' : none}</section>`;
}

const HOW: Record<string, string> = {
  '--yes': 'pre-approved with --yes on the command line (no prompt)',
  prompt: 'answered at the terminal prompt',
};

function approvals(m: ReportModel): string {
  if (!m.approvals.length) return '';
  const rows = m.approvals.map(
    (a) =>
      `<tr data-step="${esc(a.stepId)}"><td><b>${esc(a.stepId)}</b></td><td>${a.decision === 'approved' ? '<span class="pill s-done">approved</span>' : a.decision === 'declined' ? '<span class="pill s-failed">declined</span>' : '<span class="pill s-in-flight">waiting: no terminal to ask</span>'}</td><td class="who">${esc(a.by)}</td><td>${esc(a.via ? (HOW[a.via] ?? a.via) : '')}</td><td>${when(a.at)} <span class="muted">${esc(offset(a.atMs))}</span></td></tr>`,
  );
  return `<section id="approvals"><h2>Approval gates</h2><table class="steps"><thead><tr><th>step</th><th>decision</th><th>by (OS account@host)</th><th>how</th><th>when</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function details(s: ReportStep): string {
  if (s.startMs === undefined)
    return `<details><summary><b>${esc(s.id)}</b> <code>${esc(s.kind)}</code> ${pill(s.status)}</summary><p class="muted">not run</p></details>`;
  const parts = [`<h4>inputs</h4>${value(s.inputs)}`];
  if (s.outputs) parts.push(`<h4>outputs</h4>${value(s.outputs)}`);
  if (s.plan?.length) parts.push(`<h4>plan</h4><pre>${esc(s.plan.join('\n'))}</pre>`);
  if (s.checks.length)
    parts.push(
      `<h4>checks</h4><ul>${s.checks.map((c) => `<li>${c.ok ? '✔' : '<b class="badtext">✖</b>'} ${esc(c.phase)} <b>${esc(c.check)}</b> ${esc(offset(c.atMs))}${c.error ? ` — ${esc(c.error)}` : ''}</li>`).join('')}</ul>`,
    );
  if (s.gate)
    parts.push(`<h4>gate</h4><p>${esc(s.gate.decision)}${s.gate.via ? ` via ${esc(s.gate.via)}` : ''}</p>`);
  return `<details><summary><b>${esc(s.id)}</b> <code>${esc(s.kind)}</code> ${pill(s.status)}</summary><div class="det">${parts.join('')}</div></details>`;
}

const CSS = `
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#fff}
main{max-width:1120px;margin:0 auto;padding:20px 28px 40px}h1{font-size:22px;margin:0}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h4{margin:10px 0 4px;font-size:13px;color:#57606a;text-transform:uppercase;letter-spacing:.04em}
code,pre,.lbl,.tick,.mk{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}code{font-size:12.5px;background:#f6f8fa;padding:1px 4px;border-radius:4px;word-break:break-all}pre{background:#f6f8fa;padding:8px;border-radius:6px;font-size:12px;overflow:auto;max-height:320px;white-space:pre-wrap;word-break:break-word}
.hdr{border-left:8px solid #888;padding:12px 16px;border-radius:6px;background:#f6f8fa}.hdr.ok{border-color:#2e7d32;background:#edf7ee}.hdr.warn{border-color:#ef8f00;background:#fff6e5}.hdr.bad{border-color:#c62828;background:#fdecec}.hdr.info{border-color:#1565c0;background:#eaf2fc}
.badge{display:inline-block;font-weight:700;font-size:13px;padding:2px 10px;border-radius:12px;color:#fff;background:#888;margin-bottom:6px;text-transform:uppercase}.ok .badge{background:#2e7d32}.warn .badge{background:#ef8f00}.bad .badge{background:#c62828}.info .badge{background:#1565c0}
.sub{color:#57606a;margin-top:2px}.msg{margin:8px 0 0}.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:14px 0}.facts dt{color:#57606a}.facts dd{margin:0}
#integrity.ok{color:#1b5e20}#integrity.bad{color:#c62828;font-weight:700}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}.card{border:1px solid #d0d7de;border-radius:8px;padding:8px 14px;min-width:150px;max-width:330px}.card b{display:block;font-size:20px}.card span{color:#57606a;font-size:12px}.card.bad{border-color:#c62828;background:#fdecec}.card.bad b{color:#c62828}.card.good b{color:#1b5e20}
svg text.lbl{font-size:12px;fill:#1f2328}svg text.tick{font-size:10.5px;fill:#57606a;text-anchor:middle}svg text.mk{font-size:11px}svg text.mlabel{font-size:11px;fill:#8d6e00}svg text.none{font-size:11px;fill:#8c959f;font-style:italic}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#57606a;margin-top:4px}.legend i{display:inline-block;width:14px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse}.steps{width:100%}.steps th,.steps td{border-bottom:1px solid #d8dee4;padding:5px 8px;text-align:left;vertical-align:top}.steps thead th{background:#f6f8fa;font-size:12px;color:#57606a}.num{text-align:right!important;white-space:nowrap;font-variant-numeric:tabular-nums}.err{color:#c62828;font-size:12.5px;max-width:420px;word-break:break-word}
.kv th{text-align:left;color:#57606a;font-weight:500;padding:2px 12px 2px 0;vertical-align:top;white-space:nowrap}.kv td{padding:2px 0}.kv.wide th{min-width:260px}tr.bad td,tr.bad th{color:#c62828;font-weight:700}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;background:#eaeef2;color:#424a53}.s-done{background:#dcf2de;color:#1b5e20}.s-failed,.s-undo-failed{background:#fdd8d8;color:#b71c1c}.s-undone{background:#e9e3f7;color:#4a2f93}.s-in-flight{background:#fff1c2;color:#7a5a00}.s-planned{background:#dbe9fb;color:#0d47a1}
.tag{font-size:11px;background:#222;color:#fff;border-radius:4px;padding:0 5px}.muted{color:#6e7781}.badtext{color:#c62828}
.att li{margin:3px 0}.att li.bad{color:#b71c1c}.att li.warn{color:#7a5a00}
details{border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:6px 10px}summary{cursor:pointer}.ba{display:grid;grid-template-columns:1fr 30px 1fr;gap:8px}.arrow{font-size:22px;color:#8c959f;align-self:center;text-align:center}.det{padding-left:4px}
.res{border:1px solid #d0d7de;border-radius:8px;margin:10px 0;padding:8px 12px}.res h3{font-size:14.5px;margin:0 0 6px}.diff{width:100%;table-layout:fixed}.diff th{text-align:left;font-size:12px;color:#57606a;font-weight:600;padding:2px 8px;border-bottom:1px solid #d8dee4}.diff td{vertical-align:top;padding:4px 8px}.diff th:last-child,.diff td:last-child{width:24%}
.lines{list-style:none;margin:0;padding:0}.lines li{margin:2px 0;padding-left:16px;position:relative}.lines li.del{background:#ffebe9}.lines li.add{background:#e6ffec}.lines li.del::before,.lines li.add::before{position:absolute;left:3px;font-weight:700}.lines li.del::before{content:"−";color:#cf222e}.lines li.add::before{content:"+";color:#1a7f37}.lines code{background:none;padding:0;word-break:break-word;white-space:pre-wrap}
.restored{color:#4a2f93}.o-restored{background:#e9e3f7;color:#4a2f93}.o-in-place{background:#dcf2de;color:#1b5e20}.o-undo-failed,.o-not-finished{background:#fdd8d8;color:#b71c1c}.o-left-in-place{background:#fff1c2;color:#7a5a00}.note{margin:4px 0 0;font-size:12.5px}.local{color:#57606a}.who{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}.clock{color:#57606a}.card em{font-style:normal;font-weight:600;color:#1f2328}
footer{margin-top:30px;color:#6e7781;font-size:12px}@media print{details{break-inside:avoid}}
`;

export function renderHtml(m: ReportModel): string {
  const tone = TONE[m.status] ?? 'bad';
  const outcomes = [...new Set(m.steps.map((s) => s.status))].map(
    (st) => [st, m.steps.filter((s) => s.status === st).length] as const,
  );
  const name = m.runbook.replace(/ \(.*\)$/, '');
  const integrity = m.integrity.ok
    ? `<span id="integrity" class="ok">✔ hash chain intact — ${esc(m.integrity.records)} records, head <code>${esc(m.integrity.headHash ?? '')}</code></span>`
    : m.integrity.unanchored
      ? `<span id="integrity" class="bad">⚠ hash chain whole, head <code>${esc(m.integrity.headHash ?? '')}</code>, but not anchored here (no journal key on this host): compare the head with the one published for this run</span>`
      : `<span id="integrity" class="bad">✖ TAMPERED at line ${esc(m.integrity.badLine ?? '?')}: ${esc(m.integrity.reason ?? '')} — do not trust this report</span>`;
  const r = (m.rehearsal ?? {}) as Record<string, unknown>;
  const over = m.maintenance && m.budgetMs !== undefined && (m.maintenance.durationMs ?? 0) > m.budgetMs;
  const cards = [
    `<div class="card"><b>${esc(formatMs(m.totalMs))}</b><span>total, ${m.steps.filter((s) => s.startMs !== undefined).length} of ${m.steps.length} steps ran</span></div>`,
    `<div class="card"><b>${esc(outcomes.map(([st, n]) => `${n} ${st}`).join(' · ') || 'none')}</b><span>step outcomes</span></div>`,
    m.maintenance
      ? `<div class="card${over ? ' bad' : ' good'}" id="time-in-maintenance"><b>${m.maintenance.durationMs !== undefined ? esc(formatMs(m.maintenance.durationMs)) : '?'}</b><span><em>time in maintenance</em>${m.budgetMs !== undefined ? ` of a ${esc(formatMs(m.budgetMs))} budget${over ? ': EXCEEDED' : ''}` : ''}: the app showed its maintenance page, maintenance switched on → off${m.maintenanceAt ? ` (${esc(tod(m.maintenanceAt.entered))} → ${m.maintenanceAt.exited ? esc(tod(m.maintenanceAt.exited)) : 'no exit recorded'} UTC)` : ''}</span></div>`
      : '',
    typeof r.writeUnavailableMs === 'number'
      ? `<div class="card" id="write-unavailability"><b>${esc(formatMs(r.writeUnavailableMs))}</b><span><em>write-unavailability</em>, measured by the rehearsal's writers: first failed write → first write the new primary accepted (not the same as time in maintenance)</span></div>`
      : m.mode === 'run'
        ? `<div class="card" id="write-unavailability"><b>not measured</b><span><em>write-unavailability</em>: only <code>cutover rehearse</code> measures it (writers through the app's path); time in maintenance is not it</span></div>`
        : '',
    typeof r.lostWrites === 'number'
      ? `<div class="card${r.lostWrites > 0 ? ' bad' : ' good'}"><b>${esc(r.lostWrites)}</b><span>acknowledged writes lost${typeof r.acknowledgedWrites === 'number' ? ` of ${esc(r.acknowledgedWrites)}` : ''}</span></div>`
      : '',
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(`cutover ${m.mode === 'plan' ? 'plan' : 'run'} ${name}: ${m.status}`)}</title><style>${CSS}</style></head>
<body><main>
<header class="hdr ${tone}"><div class="badge" id="result">${esc(m.status)}</div><h1>${esc(name)}</h1>
<div class="sub">${m.mode === 'plan' ? 'plan (dry run)' : 'run'} <code>${esc(m.runId)}</code>${m.exitCode !== undefined ? ` · exit status ${esc(m.exitCode)}` : ' · no run-end record (interrupted)'}</div>
${m.message ? `<p class="msg">${esc(m.message)}</p>` : ''}</header>
<dl class="facts"><dt>runbook</dt><dd>${esc(m.runbook)}</dd><dt>operator</dt><dd id="operator">${esc(m.by)}</dd><dt>started</dt><dd id="started">${when(m.startedAt)}</dd><dt>ended</dt><dd id="ended">${when(m.endedAt)} — ${esc(formatMs(m.totalMs))} after the start</dd><dt>journal</dt><dd>${integrity}</dd></dl>
<div class="cards">${cards.join('')}</div>
<section id="timeline"><h2>Timeline</h2>${timeline(m)}<div class="legend">${LEGEND}<span>○ check passed</span><span style="color:#c62828">● check failed</span></div></section>
${rehearsal(m)}
${changes(m)}
${approvals(m)}
${attention(m)}
${stepTable(m)}
<section id="details"><h2>Step details</h2>${m.steps.map(details).join('')}</section>
<footer>Generated by cutover from the run's hash-chained journal. Offsets (+1.2s) count from the first journal record (${esc(utc(m.startedAt))}); clock times are in UTC, then in this machine's zone (${esc(ZONE)}).</footer>
</main></body></html>
`;
}
