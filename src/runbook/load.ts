// Reads a runbook keeping the YAML document, so any error can point at FILE:LINE:COL.
import { readFileSync, statSync } from 'node:fs';
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
  visit,
} from 'yaml';
import { InputError, RunbookError, type SourcePos, type ValidationIssue } from '../errors.js';
import { sha256Hex } from '../util/digest.js';

export interface LoadedRunbook {
  file: string;
  text: string;
  /** Computed on first read: a run journals it, `validate` never needs it. */
  readonly sha256: string;
  doc: Document.Parsed;
  /** Plain JS value of the document (undefined when the YAML did not parse). */
  data: unknown;
  yamlIssues: ValidationIssue[];
  pos(path: readonly (string | number)[], which?: 'value' | 'key'): SourcePos;
}

/** Far above any real runbook (the production template is ~20 KB); a bigger file is refused unread. */
export const MAX_RUNBOOK_BYTES = 1024 * 1024;
/** Deeper nesting than any runbook needs; past it the YAML parser and the validator would recurse without end. */
const MAX_DEPTH = 64;

/** Offset of the first flow bracket nested deeper than MAX_DEPTH (outside quotes), if any. */
function tooDeep(text: string): number | undefined {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s[{,:]/.test(text[i - 1]!)) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_DEPTH) return i;
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return undefined;
}

/**
 * Aliases: an undefined one, one inside its own anchor (a cycle), or more than a runbook needs
 * (an alias bomb) — each refused at the alias, before the document is expanded.
 */
function aliasProblem(doc: Document.Parsed): { offset: number; message: string } | undefined {
  let found: { offset: number; message: string } | undefined;
  let count = 0;
  visit(doc, {
    Alias(_key, node, path) {
      const offset = node.range?.[0] ?? 0;
      count++;
      const target = node.resolve(doc);
      if (!target) found = { offset, message: `alias *${node.source} names no anchor defined before it` };
      else if (path.includes(target as never))
        found = { offset, message: `alias *${node.source} is inside its own anchor (a cycle)` };
      else if (count > 100)
        found = { offset, message: 'more than 100 aliases: refused (an alias bomb expands without limit)' };
      return found ? visit.BREAK : undefined;
    },
  });
  return found;
}

export function loadRunbookText(file: string, text: string): LoadedRunbook {
  const lc = new LineCounter();
  const at = (offset: number): SourcePos => {
    const p = lc.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const deep = tooDeep(text);
  let doc: Document.Parsed;
  try {
    doc = parseDocument(deep === undefined ? text : '', {
      lineCounter: lc,
      prettyErrors: false,
      // `1` and "1" are one key once loaded: duplicates by their text, not their YAML type.
      uniqueKeys: (a, b) => a === b || (isScalar(a) && isScalar(b) && String(a.value) === String(b.value)),
    });
  } catch {
    doc = parseDocument('', { lineCounter: lc });
  }
  if (deep !== undefined) {
    // The line counter needs the text's lines for positions.
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1);
    return failed(file, text, doc, at(deep), `nested deeper than ${MAX_DEPTH} levels`);
  }
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

  let data: unknown;
  if (!doc.errors.length) {
    // An alias is written *name: without a '*' in the text there is none, and no walk to pay for.
    const bad = text.includes('*') ? aliasProblem(doc) : undefined;
    if (bad)
      yamlIssues.push({ pos: at(bad.offset), message: `invalid YAML: ${bad.message}`, severity: 'error' });
    else
      try {
        data = doc.toJS({ maxAliasCount: 100 });
      } catch (e) {
        // Expansion failed (too many aliases expanded): point at the first alias.
        let first = 0;
        visit(doc, {
          Alias(_k, node) {
            first = node.range?.[0] ?? 0;
            return visit.BREAK;
          },
        });
        yamlIssues.push({
          pos: at(first),
          message: `invalid YAML: ${(e as Error).message.split('\n')[0]}`,
          severity: 'error',
        });
      }
  }
  return {
    file,
    text,
    get sha256() {
      return sha256Hex(text);
    },
    doc,
    data,
    yamlIssues,
    pos,
  };
}

function failed(
  file: string,
  text: string,
  doc: Document.Parsed,
  pos: SourcePos,
  message: string,
): LoadedRunbook {
  return {
    file,
    text,
    get sha256() {
      return sha256Hex(text);
    },
    doc,
    data: undefined,
    yamlIssues: [{ pos, message: `invalid YAML: ${message}`, severity: 'error' }],
    pos: () => pos,
  };
}

export function loadRunbookFile(file: string): LoadedRunbook {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_RUNBOOK_BYTES)
      throw new RunbookError([
        {
          pos: { file, line: 1, col: 1 },
          message: `the file is ${size} bytes; a runbook is at most ${MAX_RUNBOOK_BYTES} (refused unread)`,
          severity: 'error',
        },
      ]);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof RunbookError) throw e;
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
