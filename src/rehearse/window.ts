// The predicted window where commands print it: after `cutover plan` (with the table sizes it just
// read) and in `cutover announce`.
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import { buildAnnouncement, checkTimeZone, parseAt, renderAnnouncement } from '../report/announce.js';
import { prepareRunbookFile } from '../runbook/validate.js';
import { predictFor, readTableSizes, stepInfos } from './history.js';
import { renderPrediction } from './predict.js';

export async function planPrediction(
  file: string,
  runDir: string,
  o: { var: Record<string, string>; runsDir: string; json?: boolean; route53Propagation?: number },
): Promise<void> {
  const prepared = prepareRunbookFile(file, { vars: o.var, envStrict: true });
  let sizes: Awaited<ReturnType<typeof readTableSizes>>;
  try {
    sizes = await readTableSizes(prepared, runDir);
  } catch (e) {
    // The prediction goes on without them, and says the checksum's time is not in it.
    process.stderr.write(`cutover: table sizes not read (${(e as Error).message})\n`);
  }
  const p = predictFor(prepared, resolve(o.runsDir), {
    ...(sizes ? { sizes } : {}),
    ...(o.route53Propagation !== undefined ? { route53Ms: o.route53Propagation } : {}),
  });
  if (o.json) console.log(JSON.stringify({ type: 'prediction', ...p }));
  else console.log(renderPrediction(p, 'Predicted window for this target'));
}

export function announceText(
  file: string,
  o: {
    at: string;
    var: Record<string, string>;
    runsDir: string;
    margin: string;
    format: 'md' | 'text';
    timeZone: string;
    route53Propagation?: number;
  },
): string {
  const at = parseAt(o.at);
  const timeZone = checkTimeZone(o.timeZone);
  // Announcing connects to nothing: secrets need not be set.
  const prepared = prepareRunbookFile(file, { vars: o.var, envStrict: false });
  const prediction = predictFor(prepared, resolve(o.runsDir), {
    ...(o.route53Propagation !== undefined ? { route53Ms: o.route53Propagation } : {}),
  });
  if (!prediction.rehearsals)
    throw new InputError(
      'NO_REHEARSAL',
      `${o.runsDir}: no successful rehearsal of "${prepared.runbook.name}" there: the announced window comes from rehearsals; run \`cutover rehearse ${file}\` first (or pass --runs-dir)`,
    );
  const a = buildAnnouncement({
    runbook: prepared.runbook.name,
    ...(prepared.runbook.description ? { description: prepared.runbook.description } : {}),
    steps: stepInfos(prepared),
    prediction,
    at,
    margin: o.margin,
    timeZone,
  });
  return renderAnnouncement(a, o.format);
}
