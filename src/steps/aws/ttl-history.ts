// A TTL lowered by aws.route53.set-ttl does not shorten what resolvers cached before the lowering:
// they may keep the old answer for the OLD TTL, counted from the lowering. Route 53 keeps no record
// history, so the lowerings are looked up in the journals of this run and of earlier runs beside it
// (same runs directory): a set-ttl step's inputs name the record, its outputs carry the TTL before
// and `safeAfter`, the moment the last answer cached with that TTL expires.
import { type Dirent, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { JOURNAL_FILE } from '../../journal/files.js';
import { fqdn, normalizeZoneId } from './records.js';

export interface Lowering {
  /** The TTL before the lowering, in seconds. */
  fromTtl: number;
  /** ISO time until which an answer cached with fromTtl may still be served. */
  until: string;
  /** The run that lowered it. */
  runDir: string;
}

interface Slot {
  zoneId: string;
  name: string;
  type: string;
  setIdentifier?: string | undefined;
}

// Journals untouched for longer than any TTL worth waiting out cannot matter.
const MAX_AGE_MS = 7 * 24 * 3600_000;

function sameSlot(inputs: Record<string, unknown>, s: Slot): boolean {
  return (
    typeof inputs.zoneId === 'string' &&
    typeof inputs.name === 'string' &&
    normalizeZoneId(inputs.zoneId) === normalizeZoneId(s.zoneId) &&
    fqdn(inputs.name) === fqdn(s.name) &&
    inputs.type === s.type &&
    (inputs.setIdentifier ?? '') === (s.setIdentifier ?? '')
  );
}

function lowerings(journal: string, runDir: string, s: Slot): Lowering[] {
  const out: Lowering[] = [];
  const started = new Map<string, Record<string, unknown>>();
  for (const line of journal.split('\n')) {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // a torn last line, or not a journal
    }
    const id = typeof r.stepId === 'string' ? r.stepId : undefined;
    if (!id) continue;
    if (
      r.type === 'step-start' &&
      r.kind === 'aws.route53.set-ttl' &&
      r.inputs &&
      typeof r.inputs === 'object'
    )
      started.set(id, r.inputs as Record<string, unknown>);
    if (r.type !== 'step-done') continue;
    const inputs = started.get(id);
    const o = r.outputs as Record<string, unknown> | undefined;
    if (!inputs || !o || !sameSlot(inputs, s)) continue;
    if (typeof o.previousTtl !== 'number' || typeof o.ttl !== 'number' || typeof o.safeAfter !== 'string')
      continue;
    if (o.previousTtl > o.ttl) out.push({ fromTtl: o.previousTtl, until: o.safeAfter, runDir });
  }
  return out;
}

/** The lowering of this record whose cached answers expire last, if one has not expired yet. */
export function pendingLowering(runDir: string, s: Slot, now = Date.now()): Lowering | undefined {
  const runsDir = dirname(resolve(runDir));
  let entries: Dirent[];
  try {
    entries = readdirSync(runsDir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  let best: Lowering | undefined;
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const file = join(runsDir, e.name, JOURNAL_FILE);
    let text: string;
    try {
      if (now - statSync(file).mtimeMs > MAX_AGE_MS) continue;
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const l of lowerings(text, join(runsDir, e.name), s))
      if (Date.parse(l.until) > now && (!best || Date.parse(l.until) > Date.parse(best.until))) best = l;
  }
  return best;
}

/** Seconds an answer cached before the lowering may still live. */
export function secondsLeft(l: Lowering | undefined, now = Date.now()): number {
  return l ? Math.max(0, Math.ceil((Date.parse(l.until) - now) / 1000)) : 0;
}
