// A run directory's file names, apart from the journal's writer: readers of earlier runs (the flip's
// TTL history, checked by `validate`) need them without loading node:crypto.
export const JOURNAL_FILE = 'journal.jsonl';
/** `<seq> <hash> <mac>` of the last record written (rewritten after each): a removed last line shows. */
export const HEAD_FILE = 'journal.head';
