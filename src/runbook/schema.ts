// The runbook schema. Types are derived from it; `cutover schema` prints it as JSON Schema.
import { z } from 'zod';
import { DURATION_HINT, parseDuration } from '../duration.js';

// A command parses each schema a handful of times: compiling a fast path per object schema (zod's
// JIT, `new Function`) costs `validate` more at start than it ever saves.
z.config({ jitless: true });

/** Node's timers fire at once past this (about 24.8 days): a longer duration would not wait at all. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

export const Duration = z
  .union([z.string(), z.number()])
  .refine((v) => parseDuration(v) !== undefined, { message: `expected ${DURATION_HINT}` })
  .refine((v) => (parseDuration(v) ?? 0) <= MAX_DURATION_MS, {
    message: 'longer than 24 days (the longest wait Node timers keep)',
  })
  .describe(DURATION_HINT);

/** Secrets are referenced, never written into the runbook. */
export const SecretRef = z.union([
  z.object({ env: z.string().min(1).describe('name of an environment variable') }).strict(),
  z.object({ file: z.string().min(1).describe('path of a file holding the value') }).strict(),
]);

const StringOrSecret = z.union([z.string(), SecretRef]);
const Scalar = z.union([z.string(), z.number(), z.boolean()]);

export const DatabaseSpec = z
  .object({
    host: z.string().min(1),
    port: z.union([z.number().int().min(1).max(65535), z.string()]).optional(),
    user: StringOrSecret,
    password: StringOrSecret.optional(),
    database: z.string().optional(),
    ssl: z.boolean().optional(),
    connectTimeout: Duration.optional(),
    resolvers: z
      .union([z.array(z.string()), z.string()])
      .optional()
      .describe(
        'resolve host through these DNS servers ("ip" or "ip:port"), as the application does, instead of the system resolver; or one ${params.x} naming a list',
      ),
  })
  .strict();

// A list parameter (hosts, tables, files) is set with --var name=a,b,c.
const ParamValue = z.union([Scalar, z.array(Scalar)]);

export const ParamSpec = z.union([
  ParamValue,
  z
    .object({
      default: ParamValue.optional(),
      secret: z.boolean().optional().describe('redact this value everywhere'),
      description: z.string().optional(),
    })
    .strict(),
]);

export const CheckSpec = z
  .object({
    kind: z.string().describe('a read-only step kind'),
    name: z.string().optional(),
    with: z.record(z.string(), z.unknown()).optional(),
    writes: z
      .string()
      .optional()
      .describe(
        'acknowledges what a check kind writes anyway (mysql.replica-lag: heartbeat); required when it writes',
      ),
    'wait-until': z
      .object({ timeout: Duration, interval: Duration.optional() })
      .strict()
      .optional()
      .describe('poll the check until it passes or the timeout expires'),
  })
  .strict();

export const StepSpec = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'step ids use letters, digits, - and _')
      .describe('unique id, referenced as ${steps.<id>.outputs.<name>}'),
    kind: z.string(),
    name: z.string().optional(),
    with: z.record(z.string(), z.unknown()).optional(),
    before: z.array(CheckSpec).optional().describe('checks that must pass before the step changes anything'),
    after: z.array(CheckSpec).optional().describe('checks that must pass after the step, or it is failed'),
    timeout: Duration.optional(),
    undoTimeout: Duration.optional(),
    retries: z.number().int().min(0).max(20).optional(),
    retryDelay: Duration.optional(),
    approval: z.boolean().optional().describe('ask the operator before this step (--yes passes)'),
    pointOfNoReturn: z
      .boolean()
      .optional()
      .describe('after this step, failures stop instead of rolling back'),
    rollback: z
      .union([
        z.literal('none'),
        z.object({ kind: z.string(), with: z.record(z.string(), z.unknown()).optional() }).strict(),
      ])
      .optional()
      .describe('override the kind’s own undo'),
  })
  .strict();

export const NotifySpec = z
  .object({
    webhook: z.string().min(1),
    format: z.enum(['slack', 'json']).optional(),
    on: z.array(z.enum(['start', 'point-of-no-return', 'failure', 'rollback', 'success'])).optional(),
    timeout: Duration.optional(),
  })
  .strict();

export const RunbookSpec = z
  .object({
    version: z.literal(1),
    // The name is part of each run directory's name: it must fit in a file name (255 bytes) with the rest.
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'names use letters, digits, ., - and _')
      .max(100, 'names are at most 100 characters (they are part of the run directory name)'),
    description: z.string().optional(),
    envFiles: z
      .array(z.string())
      .optional()
      .describe('KEY=value files (relative to the runbook) merged under the process environment'),
    params: z.record(z.string(), ParamSpec).optional(),
    databases: z.record(z.string(), DatabaseSpec).optional(),
    aws: z
      .object({
        region: z.string().optional(),
        profile: z.string().optional(),
        endpoint: z.string().optional(),
      })
      .strict()
      .optional(),
    maintenance: z
      .object({
        budget: Duration.refine((v) => (parseDuration(v) ?? 0) > 0, {
          message: 'a budget of zero would roll back the moment maintenance begins',
        }),
      })
      .strict()
      .optional(),
    rollback: z
      .object({
        afterPointOfNoReturn: z
          .enum(['stop', 'auto'])
          .optional()
          .describe(
            'a failure after the point of no return: stop and report (default), or roll back on its own while a safety net (reverse replication) is healthy',
          ),
        onHangup: z
          .enum(['continue', 'rollback'])
          .optional()
          .describe(
            'the operator terminal goes away (SIGHUP, closed stdout): carry on with output to a log file in the run dir (default), or roll back as for SIGTERM',
          ),
      })
      .strict()
      .optional()
      .describe('what the engine does on its own when things go wrong'),
    hooks: z.object({ dir: z.string() }).strict().optional(),
    notify: z.union([NotifySpec, z.array(NotifySpec)]).optional(),
    defaults: z
      .object({
        timeout: Duration.optional(),
        retries: z.number().int().min(0).optional(),
        retryDelay: Duration.optional(),
      })
      .strict()
      .optional(),
    rehearsal: z
      .object({
        load: z
          .object({
            database: z
              .string()
              .describe(
                'database (from databases:) the canary writers use: the application account, through the DNS name',
              ),
            setupOn: z
              .string()
              .describe(
                'database where the canary table is created before the run (the current primary, tool account)',
              ),
            verifyOn: z
              .string()
              .describe('database where every acknowledged write is checked afterwards (the new primary)'),
            table: z
              .string()
              .regex(/^[A-Za-z0-9_]+$/)
              .optional(),
            writers: z.number().int().min(1).max(32).optional(),
          })
          .strict(),
      })
      .strict()
      .optional()
      .describe('how `cutover rehearse` puts the runbook under a canary write load'),
    steps: z.array(StepSpec).min(1, 'a runbook needs at least one step'),
  })
  .strict();

export type Runbook = z.infer<typeof RunbookSpec>;
export type Step = z.infer<typeof StepSpec>;
export type Check = z.infer<typeof CheckSpec>;
export type DatabaseSpecT = z.infer<typeof DatabaseSpec>;
export type NotifyT = z.infer<typeof NotifySpec>;

/** A database with its secrets resolved: only ever handed to adapters, never journaled. */
export interface DatabaseConfig {
  name: string;
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
  ssl?: boolean;
  connectTimeoutMs: number;
  /** DNS servers to resolve host with (the application's view), e.g. the sandbox DNS. */
  resolvers?: string[];
}
