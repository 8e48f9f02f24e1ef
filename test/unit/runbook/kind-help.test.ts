// `cutover kinds NAME`: each `with:` key of a kind as an author reads it (type, required or
// default, meaning), read off the kind's own schema so it cannot drift from what validate accepts.
import { describe, expect, it } from 'vitest';
import { kindHelp, renderKindHelp } from '../../../src/runbook/kind-help.js';
import { getKind, kinds } from '../../../src/steps/registry.js';

const reverse = kindHelp(getKind('mysql.replication.reverse')!);
const param = (name: string) => reverse.params.find((p) => p.name === name);

describe('kinds NAME', () => {
  it('names each key with its type, and required or its default', () => {
    expect(param('source')).toMatchObject({ required: true, type: 'text' });
    expect(param('timeout')).toMatchObject({ required: false, type: 'duration', default: '30s' });
    expect(param('ssl')).toMatchObject({ type: 'true | false', default: false });
    expect(param('sourcePort')?.type).toBe('number 1–65535');
    expect(param('startPos')?.type).toBe('number or null');
    expect(param('mode')?.type).toBe('"gtid" | "position"');
    expect(param('accounts')).toMatchObject({ type: 'list of text', default: [] });
    expect(param('replicationAccount')?.description).toMatch(/REPLICATION SLAVE/);
  });

  it('says what a rollback does with it, and what it outputs', () => {
    expect(reverse.undo).toMatch(/makes a rollback after the point of no return safe/);
    expect(reverse.outputs).toContain('startedAt');
    expect(kindHelp(getKind('mysql.connections')!).undo).toMatch(/reads only/);
    const text = renderKindHelp(reverse);
    expect(text).toMatch(/^mysql\.replication\.reverse\n/);
    expect(text).toMatch(/\n {2}timeout +duration \(default "30s"\)\n +how long the replication threads/);
  });

  it('every key of every kind has a type the renderer knows', () => {
    for (const k of kinds.values()) {
      const h = kindHelp(k);
      expect(h.params.length, k.kind).toBeGreaterThan(0);
      for (const p of h.params) expect(p.type, `${k.kind}.${p.name}`).not.toMatch(/^any$|^$/);
    }
  });
});
