// Wire-format helpers shared by the EC2, RDS and Route 53 emulations: an error type carrying the
// AWS error code and HTTP status, a minimal XML writer, and query-protocol parameter access.

export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly type: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
  }
}

export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** An element: [name, content]; array content is child elements, scalar content is text. */
export type XmlNode = [string, XmlValue];
export type XmlChild = XmlNode | false | undefined | null;
export type XmlValue = string | number | boolean | Date | undefined | null | XmlChild[];

export function xml(nodes: XmlChild[]): string {
  let out = '';
  for (const n of nodes) {
    if (!n) continue;
    const [name, v] = n;
    if (v === undefined || v === null) continue;
    out += `<${name}>${content(v)}</${name}>`;
  }
  return out;
}

function content(v: XmlValue): string {
  if (v === undefined || v === null) return '';
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return xml(v);
  return xmlEscape(String(v));
}

/** A wrapped list (`<name><member>..</member>...</name>`), left out when empty as AWS does. */
export function list<T>(name: string, member: string, values: readonly T[], f: (v: T) => XmlValue): XmlChild {
  if (!values.length) return undefined;
  return [name, values.map((v): XmlNode => [member, f(v)])];
}

export function xmlDocument(root: string, xmlns: string, nodes: XmlChild[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${xmlns}">${xml(nodes)}</${root}>`;
}

/** The error body of the RDS query protocol and of Route 53 REST-XML (EC2 has its own shape). */
export function errorResponseXml(xmlns: string, e: AwsError, reqId: string): string {
  return xmlDocument('ErrorResponse', xmlns, [
    [
      'Error',
      [
        ['Type', e.type],
        ['Code', e.code],
        ['Message', e.message],
      ],
    ],
    ['RequestId', reqId],
  ]);
}

/** Query-protocol parameters (form fields): flat `A.1.B.2` keys. */
export class QueryParams {
  constructor(readonly map: Map<string, string>) {}

  static parse(body: string): QueryParams {
    return new QueryParams(new Map(new URLSearchParams(body)));
  }

  get(key: string): string | undefined {
    return this.map.get(key);
  }

  int(key: string): number | undefined {
    const v = this.map.get(key);
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n))
      throw new AwsError(
        'InvalidParameterValue',
        `Value (${v}) for parameter ${key} is invalid. It must be an integer.`,
      );
    return n;
  }

  /** Indexes N present under `prefix.N` (prefix.N or prefix.N.*), in numeric order. */
  indexes(prefix: string): number[] {
    const found = new Set<number>();
    const p = `${prefix}.`;
    for (const k of this.map.keys()) {
      if (!k.startsWith(p)) continue;
      const n = Number(k.slice(p.length).split('.')[0]);
      if (Number.isInteger(n)) found.add(n);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** Values of a flattened list `prefix.1`, `prefix.2`, ... */
  list(prefix: string): string[] {
    return this.indexes(prefix)
      .map((i) => this.map.get(`${prefix}.${i}`))
      .filter((v): v is string => v !== undefined);
  }
}

export function bool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  return v === 'true' || v === '1';
}
