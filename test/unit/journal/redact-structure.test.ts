// Redaction replaces values, never the names things go by: a secret that is also part of a step id
// or the runbook's path leaves ids and paths as they are (rollback matches steps by id).
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../../src/journal/redact.js';

describe('redaction keeps structure', () => {
  const r = new Redactor(['flipx']);

  it('step ids, kinds, the runbook path and keys stay; values are redacted', () => {
    const rec = r.value({
      stepId: 'flipx-dns',
      kind: 'shell.run',
      runbook: { file: '/srv/flipx/rb.yaml', name: 'flipx-cutover', sha256: 'x' },
      steps: [{ id: 'flipx-dns', kind: 'shell.run' }],
      undo: [{ stepId: 'flipx-dns', via: 'kind' }],
      notUndone: ['flipx-dns'],
      outputs: { stdout: 'token flipx here', flipx: 'flipx' },
      inputs: { command: 'echo flipx' },
    });
    expect(rec.stepId).toBe('flipx-dns');
    expect(rec.runbook).toEqual({ file: '/srv/flipx/rb.yaml', name: 'flipx-cutover', sha256: 'x' });
    expect(rec.steps).toEqual([{ id: 'flipx-dns', kind: 'shell.run' }]);
    expect(rec.undo).toEqual([{ stepId: 'flipx-dns', via: 'kind' }]);
    expect(rec.notUndone).toEqual(['flipx-dns']);
    // The key named like the secret is kept; every value holding it is not.
    expect(rec.outputs).toEqual({ stdout: 'token *** here', flipx: '***' });
    expect(rec.inputs).toEqual({ command: 'echo ***' });
  });

  it('a rollback-start list of step ids is kept, nested step ids inside values are not exempt', () => {
    const rec = r.value({ steps: ['flipx-dns', 'b'], error: { stepId: 'flipx' } });
    expect(rec.steps).toEqual(['flipx-dns', 'b']);
    expect(rec.error).toEqual({ stepId: '***' });
  });

  it('every single quote of the shell-quoted form is redacted', () => {
    const q = new Redactor([`a'b'c'd`]);
    const shellForm = `a'\\''b'\\''c'\\''d`;
    expect(q.text(`echo '${shellForm}'`)).toBe(`echo '***'`);
  });
});
