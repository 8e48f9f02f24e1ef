// The README's shell commands, as the README test runs them: every command of every ```bash, ```sh
// and ```console block (console: the lines after `$ `), in order, with the marker written next to
// its block. A block runs unless an HTML comment right above it (blank lines between are fine) says
//   <!-- readme-test: skip — why -->      (the reason is required; the test lists it)
//   <!-- readme-test: exit 2 -->          (every command of the block must exit 2; default 0)

export interface ReadmeCommand {
  /** 1-based line of the command's first line in the README. */
  line: number;
  /** As written, continuation lines joined, comments kept (bash drops them). */
  text: string;
  expectExit: number;
  /** Set when the block is marked skip: the reason given. */
  skip?: string;
}

const SHELL_LANGS = new Set(['bash', 'sh', 'shell', 'console', 'shell-session']);
const MARKER = /^<!--\s*readme-test:\s*(.*?)\s*-->$/;

export class ReadmeMarkerError extends Error {}

function parseMarker(body: string, line: number): { skip?: string; exit?: number } {
  const skip = body.match(/^skip\s*(?:[—–:-]+\s*)?(.*)$/);
  if (skip) {
    if (!skip[1]) throw new ReadmeMarkerError(`README.md:${line}: readme-test skip needs a reason`);
    return { skip: skip[1] };
  }
  const exit = body.match(/^exit\s+(\d+)$/);
  if (exit) return { exit: Number(exit[1]) };
  throw new ReadmeMarkerError(`README.md:${line}: unknown readme-test marker "${body}"`);
}

/** Every shell command in the markdown text, with what its block's marker says. */
export function readmeCommands(markdown: string): ReadmeCommand[] {
  const lines = markdown.split('\n');
  const out: ReadmeCommand[] = [];
  let marker: { skip?: string; exit?: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    const m = trimmed.match(MARKER);
    if (m) {
      marker = parseMarker(m[1]!, i + 1);
      continue;
    }
    const fence = trimmed.match(/^(`{3,}|~{3,})\s*([\w-]*)/);
    if (!fence) {
      // A marker belongs to the block right below it: any other text in between drops it.
      if (trimmed !== '') marker = undefined;
      continue;
    }
    const close = fence[1]!;
    const lang = fence[2]!.toLowerCase();
    const body: { line: number; text: string }[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trim().startsWith(close); j++)
      body.push({ line: j + 1, text: lines[j]! });
    i = j;
    const blockMarker = marker;
    marker = undefined;
    if (!SHELL_LANGS.has(lang)) continue;
    const consoleBlock = lang === 'console' || lang === 'shell-session';
    let pending: ReadmeCommand | undefined;
    for (const b of body) {
      let text = b.text;
      if (pending) {
        pending.text += `\n${text}`;
        if (!text.endsWith('\\')) pending = undefined;
        continue;
      }
      if (consoleBlock) {
        const prompt = text.match(/^\s*\$ (.*)$/);
        if (!prompt) continue; // output
        text = prompt[1]!;
      }
      if (text.trim() === '' || text.trim().startsWith('#')) {
        // A comment line continues the previous command's comment; it runs nothing.
        continue;
      }
      const cmd: ReadmeCommand = {
        line: b.line,
        text: text.trim(),
        expectExit: blockMarker?.exit ?? 0,
        ...(blockMarker?.skip ? { skip: blockMarker.skip } : {}),
      };
      out.push(cmd);
      if (text.endsWith('\\')) pending = cmd;
    }
  }
  return out;
}

export interface RewriteContext {
  /** The command that stands for `cutover`, e.g. `node /repo/bin/cutover.js`. */
  cutover: string;
  /** Appended to every `cutover sandbox up` that sets no port itself. */
  sandboxUpFlags: string;
  /** `<run-id>` and other placeholders: name (without brackets) → value, asked for when used. */
  placeholders: Record<string, () => string>;
}

// `cutover` (or `npx cutover`) where a shell starts a command: line start, after && || ; | $( .
const CUTOVER_AT_COMMAND = /(^|&&|\|\||;|\||\$\()(\s*)(?:npx\s+)?cutover(?=\s|$)/gm;

/** The command as the test runs it: `cutover` is this checkout's CLI, its sandbox on the test's ports. */
export function rewriteCommand(text: string, ctx: RewriteContext): string {
  let out = text.replace(CUTOVER_AT_COMMAND, (_m, sep: string, sp: string) => `${sep}${sp}${ctx.cutover}`);
  const cli = ctx.cutover.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  out = out.replace(
    new RegExp(`(${cli}\\s+sandbox\\s+up\\b)([^&|;\\n#]*)`, 'g'),
    (m, up: string, rest: string) =>
      /--(db|aws|dns|app)-port\b/.test(rest) ? m : `${up} ${ctx.sandboxUpFlags}${rest}`,
  );
  out = out.replace(/<([a-z][a-z0-9-]*)>/g, (m, name: string) => {
    const value = ctx.placeholders[name];
    if (!value) throw new ReadmeMarkerError(`placeholder ${m} has no value in the README test`);
    return value();
  });
  return out;
}
