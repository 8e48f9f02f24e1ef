// `cutover report`: a run's timeline from its journal, as Markdown (ticket) or JSON.
import { readJournal, verifyJournal, type JournalRecord } from '../journal/journal.js';
import { reconstruct } from '../journal/state.js';
import { formatMs } from '../errors.js';

export interface ReportModel {
  runId: string;
  runbook: string;
  by: string;
  mode: string;
  startedAt: string;
  endedAt: string;
  status: string;
  message?: string;
  integrity: { ok: boolean; records: number; badLine?: number; reason?: string; headHash?: string };
  budgetMs?: number;
  maintenance?: { startMs: number; endMs?: number; durationMs?: number };
  steps: { id: string; kind: string; status: string; startMs?: number; endMs?: number; durationMs?: number; error?: string; undo?: { startMs: number; endMs?: number; ok: boolean } }[];
  changes: { stepId: string; snapshot: unknown; outputs: unknown }[];
  rehearsal?: Record<string, unknown>;
  totalMs: number;
}

export function reportModel(runDir: string): ReportModel {
  const records = readJournal(runDir);
  const s = reconstruct(records);
  const t0 = Date.parse(records[0]!.ts);
  const at = (r: JournalRecord) => Date.parse(r.ts) - t0;
  const steps = s.stepOrder.map((id) => {
    const st = s.steps.get(id)!;
    const start = records.find((r) => r.stepId === id && r.type === 'step-start');
    const end = [...records].reverse().find((r) => r.stepId === id && (r.type === 'step-done' || r.type === 'step-failed'));
    const us = records.find((r) => r.stepId === id && r.type === 'undo-start');
    const ue = records.find((r) => r.stepId === id && (r.type === 'undo-done' || r.type === 'undo-failed'));
    return {
      id,
      kind: st.kind,
      status: st.status,
      ...(start ? { startMs: at(start) } : {}),
      ...(end ? { endMs: at(end) } : {}),
      ...(st.durationMs !== undefined ? { durationMs: st.durationMs } : {}),
      ...(st.error ? { error: st.error.message } : {}),
      ...(us ? { undo: { startMs: at(us), ...(ue ? { endMs: at(ue) } : {}), ok: ue?.type === 'undo-done' } } : {}),
    };
  });
  const mIn = records.find((r) => r.type === 'maintenance' && r.state === 'entered');
  const mOut = records.find((r) => r.type === 'maintenance' && r.state === 'exited');
  const end = records.at(-1)!;
  const rehearsal = records.find((r) => r.type === 'rehearsal');
  return {
    runId: s.runId,
    runbook: `${s.runbookName} (${s.runbookFile})`,
    by: s.by,
    mode: s.mode,
    startedAt: s.startedAt,
    endedAt: end.ts,
    status: s.end?.status ?? 'interrupted',
    ...(s.end?.message ? { message: s.end.message } : {}),
    integrity: verifyJournal(runDir),
    ...(s.maintenance.budgetMs !== undefined ? { budgetMs: s.maintenance.budgetMs } : {}),
    ...(mIn ? { maintenance: { startMs: at(mIn), ...(mOut ? { endMs: at(mOut), durationMs: mOut.elapsedMs as number } : {}) } } : {}),
    steps,
    changes: records.filter((r) => r.type === 'snapshot' && r.snapshot !== null).map((r) => ({
      stepId: r.stepId!,
      snapshot: r.snapshot,
      outputs: s.steps.get(r.stepId!)?.outputs,
    })),
    ...(rehearsal ? { rehearsal: rehearsal.result as Record<string, unknown> } : {}),
    totalMs: at(end),
  };
}

export function renderReport(runDir: string, format: 'md' | 'html' | 'json'): string {
  const m = reportModel(runDir);
  if (format === 'json') return `${JSON.stringify(m, null, 2)}\n`;
  if (format === 'html') return renderHtmlLazy(m);
  return renderMarkdown(m);
}

function renderHtmlLazy(m: ReportModel): string {
  // Kept separate: the HTML renderer is larger and only needed for --format html.
  return htmlRenderer ? htmlRenderer(m) : renderMarkdown(m);
}

let htmlRenderer: ((m: ReportModel) => string) | undefined;
export function registerHtmlRenderer(fn: (m: ReportModel) => string): void {
  htmlRenderer = fn;
}

export function renderMarkdown(m: ReportModel): string {
  const lines = [
    `# Cutover ${m.mode === 'plan' ? 'plan' : 'run'} ${m.runId}`,
    '',
    `- **Runbook:** ${m.runbook}`,
    `- **Operator:** ${m.by}`,
    `- **Started:** ${m.startedAt} — **ended:** ${m.endedAt} (${formatMs(m.totalMs)})`,
    `- **Result:** ${m.status}${m.message ? ` — ${m.message}` : ''}`,
    `- **Journal:** ${m.integrity.ok ? `hash chain intact (${m.integrity.records} records, head \`${m.integrity.headHash?.slice(0, 16)}…\`)` : `**TAMPERED** at line ${m.integrity.badLine}: ${m.integrity.reason}`}`,
  ];
  if (m.maintenance)
    lines.push(`- **Maintenance:** ${m.maintenance.durationMs !== undefined ? formatMs(m.maintenance.durationMs) : 'not exited'}${m.budgetMs !== undefined ? ` of a ${formatMs(m.budgetMs)} budget` : ''}`);
  if (m.rehearsal) {
    const r = m.rehearsal as Record<string, number | undefined>;
    lines.push(`- **Write-unavailability:** ${r.writeUnavailableMs !== undefined ? formatMs(r.writeUnavailableMs) : 'n/a'}; acknowledged writes lost: ${r.lostWrites ?? 'n/a'}`);
  }
  lines.push('', '| # | step | kind | status | started | duration |', '|---|---|---|---|---|---|');
  m.steps.forEach((s, i) => {
    lines.push(`| ${i + 1} | ${s.id} | \`${s.kind}\` | ${s.status}${s.error ? ` — ${s.error.replace(/\|/g, '\\|')}` : ''} | ${s.startMs !== undefined ? `+${formatMs(s.startMs)}` : ''} | ${s.durationMs !== undefined ? formatMs(s.durationMs) : ''} |`);
  });
  if (m.changes.length) {
    lines.push('', '## Changed resources (state before each step)', '');
    for (const c of m.changes) lines.push(`- **${c.stepId}** before: \`${JSON.stringify(c.snapshot).slice(0, 400)}\``);
  }
  return `${lines.join('\n')}\n`;
}
