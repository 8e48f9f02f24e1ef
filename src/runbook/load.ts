// Reads a runbook keeping the YAML document, so any error can point at FILE:LINE:COL.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CST,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Parser,
  parseDocument,
  type Document,
} from 'yaml';
import { InputError, type SourcePos, type ValidationIssue } from '../errors.js';

export interface LoadedRunbook {
  file: string;
  text: string;
  sha256: string;
  doc: Document.Parsed;
  /** Plain JS value of the document (undefined when the YAML did not parse). */
  data: unknown;
  yamlIssues: ValidationIssue[];
  pos(path: readonly (string | number)[], which?: 'value' | 'key'): SourcePos;
}

export function loadRunbookText(file: string, text: string): LoadedRunbook {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourcePos => {
    const p = lc.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const yamlIssues: ValidationIssue[] = [...doc.errors, ...doc.warnings].map((e) => ({
    pos: at(unclosedStart(text, e.code, e.message, e.pos[0]) ?? e.pos[0]),
    message: yamlMessage(e.code, e.message),
    severity: doc.errors.includes(e as never) ? 'error' : 'warning',
  }));

  const pos = (path: readonly (string | number)[], which: 'value' | 'key' = 'value'): SourcePos => {
    // Walk as deep as the path exists; a missing key points at its parent (the parent's key when it
    // has one: `with:` rather than the first line of the map under it).
    let node: unknown = doc.contents;
    let best: SourcePos = at(0);
    let parentKey: SourcePos | undefined;
    if (isNode(node) && node.range) best = at(node.range[0]);
    for (let i = 0; i < path.length; i++) {
      const k = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(k),
        );
        if (!pair) return parentKey ?? best;
        const last = i === path.length - 1;
        if (last && which === 'key' && isNode(pair.key) && pair.key.range) return at(pair.key.range[0]);
        node = pair.value;
        const r =
          isNode(pair.value) && pair.value.range
            ? pair.value.range
            : isNode(pair.key)
              ? pair.key.range
              : null;
        if (r) best = at(r[0]);
        parentKey = isNode(pair.key) && pair.key.range ? at(pair.key.range[0]) : undefined;
      } else if (isSeq(node) && typeof k === 'number') {
        const item = node.items[k];
        if (!item) break;
        node = item;
        if (isNode(item) && item.range) best = at(item.range[0]);
        parentKey = undefined;
      } else break;
    }
    return best;
  };

  return {
    file,
    text,
    sha256: createHash('sha256').update(text).digest('hex'),
    doc,
    data: doc.errors.length ? undefined : doc.toJS({ maxAliasCount: 100 }),
    yamlIssues,
    pos,
  };
}

export function loadRunbookFile(file: string): LoadedRunbook {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      'RUNBOOK_UNREADABLE',
      code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read (${code ?? String(e)})`,
    );
  }
  return loadRunbookText(file, text);
}

/**
 * The yaml package reports an unclosed quote or flow collection where it gave up (often the end of
 * the file); the mistake is where it was opened. Returns the offset of that opening, if found.
 */
function unclosedStart(text: string, code: string, message: string, errOffset: number): number | undefined {
  const quote = code === 'MISSING_CHAR' && /closing .?quote/.test(message);
  const flow = /end with a [}\]]/.test(message);
  if (!quote && !flow) return undefined;
  let best: number | undefined;
  const consider = (t: CST.Token | null | undefined) => {
    if (!t || t.offset >= errOffset || (best !== undefined && t.offset <= best)) return;
    if (quote && (t.type === 'double-quoted-scalar' || t.type === 'single-quoted-scalar')) {
      const q = t.source[0]!;
      const body = t.source.slice(1);
      const closed = q === '"' ? /(^|[^\\])(\\\\)*"$/.test(body) : body.endsWith("'");
      if (!closed || t.offset + t.source.length === errOffset) best = t.offset;
    }
    if (
      flow &&
      t.type === 'flow-collection' &&
      !t.end.some((e) => e.type === 'flow-map-end' || e.type === 'flow-seq-end')
    )
      best = t.offset;
  };
  for (const tok of new Parser().parse(text)) {
    if (tok.type !== 'document') continue;
    CST.visit(tok, (item) => {
      consider(item.key as CST.Token | null | undefined);
      consider(item.value);
    });
  }
  return best;
}

function yamlMessage(code: string, message: string): string {
  // The yaml package appends a code excerpt on new lines; keep the one-line reason.
  const first = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return code === 'DUPLICATE_KEY' ? `duplicate key: ${first}` : `invalid YAML: ${first}`;
}
