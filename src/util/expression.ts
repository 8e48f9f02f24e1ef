// A tiny, safe expression language for `assert`: literals, comparisons, && || !, parentheses and
// arithmetic. No identifiers, no calls: template substitution happens before, as JSON literals.
type Tok = { t: 'num' | 'str' | 'op' | 'lit'; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  const re =
    /\s*(?:(\d+(?:\.\d+)?(?:e[+-]?\d+)?)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(true|false|null)\b|(&&|\|\||==|!=|<=|>=|[<>!()+\-*/]))/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new Error(`unexpected "${src.slice(i).trim().slice(0, 20)}"`);
    i = re.lastIndex;
    if (m[1] !== undefined) out.push({ t: 'num', v: m[1] });
    else if (m[2] !== undefined) out.push({ t: 'str', v: m[2] });
    else if (m[3] !== undefined) out.push({ t: 'lit', v: m[3] });
    else out.push({ t: 'op', v: m[4]! });
  }
  return out;
}

export function evaluate(src: string, parseOnly = false): unknown {
  const toks = tokenize(src);
  let i = 0;
  const peek = () => toks[i];
  const eat = (v: string) => {
    if (peek()?.v === v) {
      i++;
      return true;
    }
    return false;
  };
  const binary =
    (next: () => unknown, ops: string[], apply: (op: string, a: any, b: any) => unknown) => () => {
      let left = next();
      while (peek()?.t === 'op' && ops.includes(peek()!.v)) {
        const op = toks[i++]!.v;
        const right = next();
        left = parseOnly ? left : apply(op, left, right);
      }
      return left;
    };
  const primary = (): unknown => {
    const tok = toks[i++];
    if (!tok) throw new Error('unexpected end of expression');
    if (tok.t === 'num') return Number(tok.v);
    if (tok.t === 'str')
      return tok.v.startsWith('"') ? JSON.parse(tok.v) : tok.v.slice(1, -1).replace(/\\'/g, "'");
    if (tok.t === 'lit') return tok.v === 'null' ? null : tok.v === 'true';
    if (tok.v === '(') {
      const v = or();
      if (!eat(')')) throw new Error('missing )');
      return v;
    }
    if (tok.v === '!') return !primary();
    if (tok.v === '-') return -(primary() as number);
    throw new Error(`unexpected "${tok.v}"`);
  };
  const mul = binary(primary, ['*', '/'], (op, a, b) => (op === '*' ? a * b : a / b));
  const add = binary(mul, ['+', '-'], (op, a, b) => (op === '+' ? a + b : a - b));
  const cmp = binary(add, ['<', '<=', '>', '>='], (op, a, b) =>
    op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b,
  );
  const eq = binary(cmp, ['==', '!='], (op, a, b) => (op === '==' ? a === b : a !== b));
  const and = binary(eq, ['&&'], (_op, a, b) => a && b);
  const or = binary(and, ['||'], (_op, a, b) => a || b);
  const v = or();
  if (i < toks.length) throw new Error(`unexpected "${toks[i]!.v}"`);
  return v;
}
