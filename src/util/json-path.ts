/** Minimal JSON path: $.a.b[0].c (dots and numeric indexes), enough for health and smoke checks. */
export function jsonPathGet(doc: unknown, path: string): { found: boolean; value?: unknown } {
  const parts = path
    .replace(/^\$\.?/, '')
    .split(/\.|\[(\d+)\]/)
    .filter((p) => p !== undefined && p !== '');
  let cur: unknown = doc;
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object') return { found: false };
    const key = Array.isArray(cur) && /^\d+$/.test(part) ? Number(part) : part;
    if (!(key in (cur as object))) return { found: false };
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return { found: true, value: cur };
}
