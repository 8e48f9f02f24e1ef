// `--var-file FILE`: KEY=value lines, the same as repeated `--var` (a contract other scripts rely on). Strict, unlike
// an env file: a line that is not a parameter assignment is a typo that would silently drop a value.
import { readFileSync, statSync } from 'node:fs';
import { InputError } from '../errors.js';

/**
 * Where this process's --var values came from (cli.ts records it as it parses). Validation refuses
 * a secret parameter given on argv (every local user sees argv in `ps`) or read from a var file
 * that group or others can read. Empty when cutover is used as a library.
 */
export type VarOrigin = { argv: true } | { file: string; mode: number };
export const varOrigins = new Map<string, VarOrigin>();

/** Records a --var given on the command line (it wins over --var-file, whatever the order). */
export function noteArgvVar(name: string): void {
  varOrigins.set(name, { argv: true });
}

const LINE = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/;

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/'\\''/g, "'");
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"'))
    return v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
  return v;
}

export function parseVarFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = LINE.exec(line);
    if (!m)
      throw new InputError(
        'BAD_VAR_FILE',
        // The line is not echoed: a var file holds secrets, and a malformed line may be one.
        `${file}:${i + 1}:1 expected key=value (the line, ${line.length} characters, is not shown: it may hold a secret)`,
      );
    out[m[1]!] = unquote(m[2]!);
  });
  return out;
}

export function readVarFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(
      'VAR_FILE_UNREADABLE',
      `--var-file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  const vars = parseVarFile(text, file);
  const mode = statSync(file).mode & 0o777;
  for (const name of Object.keys(vars))
    if (!varOrigins.has(name) || !('argv' in varOrigins.get(name)!)) varOrigins.set(name, { file, mode });
  return vars;
}
