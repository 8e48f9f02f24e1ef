// The HTML report's approval gates: each decision with the OS account that made it, how (prompt or
// --yes) and when, in UTC and in the renderer's zone. The model comes from a real journal; the
// decisions are set here because a journal's `by` is always the account running the test.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { renderHtml } from '../../../src/report/html.js';
import { reportModel } from '../../../src/report/report.js';

function model() {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-approvals-'));
  const j = Journal.open(dir, 'b'.repeat(64), new Redactor());
  j.append('run-start', {
    runId: 'r2',
    mode: 'run',
    runbook: { file: '/rb.yaml', name: 'rb', sha256: 'b'.repeat(64) },
    vars: {},
    steps: [
      { id: 'enter', kind: 'wait' },
      { id: 'flip', kind: 'wait' },
    ],
  });
  j.append('gate', { stepId: 'enter', decision: 'approved', via: 'prompt' });
  j.append('run-end', { status: 'succeeded', exitCode: 0, message: 'ok', leftovers: [] });
  j.close();
  return reportModel(dir);
}

describe('approval gates in the HTML report', () => {
  it('the journal gate record becomes a row: decision, account, how, when', () => {
    const m = model();
    expect(m.approvals).toHaveLength(1);
    expect(m.approvals[0]).toMatchObject({ stepId: 'enter', decision: 'approved', via: 'prompt' });
    expect(m.approvals[0]!.by).toBe(m.by);
    const html = renderHtml(m);
    expect(html).toContain('<section id="approvals">');
    expect(html).toContain('answered at the terminal prompt');
    expect(html).toContain(`<time datetime="${m.approvals[0]!.at}">`);
  });

  it('a declined gate and a --yes one read differently; no gate, no section', () => {
    const m = model();
    m.approvals = [
      { stepId: 'enter', decision: 'approved', by: 'alice@ops1', via: '--yes', at: m.startedAt, atMs: 0 },
      { stepId: 'flip', decision: 'declined', by: 'bob@ops2', via: 'prompt', at: m.startedAt, atMs: 5 },
    ];
    const html = renderHtml(m);
    expect(html).toMatch(/data-step="enter".*approved.*alice@ops1.*pre-approved with --yes/);
    expect(html).toMatch(/data-step="flip".*declined.*bob@ops2.*answered at the terminal prompt/);
    m.approvals = [];
    expect(renderHtml(m)).not.toContain('id="approvals"');
  });
});
