// @inquirer/confirm's prompt, from either build: the ES module (tsc output, tests) hands over the
// function as `default`; the CommonJS bundle gets Node's interop, where `default` is module.exports
// and the function sits one level down.
type Confirm = typeof import('@inquirer/confirm').default;

export async function loadConfirm(): Promise<Confirm> {
  const m = (await import('@inquirer/confirm')) as { default: Confirm | { default: Confirm } };
  return typeof m.default === 'function' ? m.default : m.default.default;
}
