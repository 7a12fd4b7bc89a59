import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { DEFAULT_QUEUE_PREFIX } from './queue-names.js';

/**
 * The environment variables every MoA Queue process reads (DESIGN §3); each
 * app's `config.ts` spreads these into its own schema.
 */
export const SHARED_ENVIRONMENT = {
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  MOA_CONFIG: z.string().min(1).optional(),
  MOA_QUEUE_PREFIX: z.string().min(1).default(DEFAULT_QUEUE_PREFIX),
  MOA_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Where batch files' content goes (create-file-store.ts): this directory,
   * or Redis when unset. The API and every worker must agree: a file one
   * writes is read by another.
   */
  MOA_FILES_DIR: z
    .string()
    .refine((value) => isAbsolute(value), 'must be an absolute path')
    .optional(),
};

/**
 * Validates an environment against a schema, or throws an error naming the
 * variable. An empty variable counts as unset: that is how shells and compose
 * files spell it, and `PORT=` must not coerce to port 0.
 */
export function parseEnvironment<Shape extends z.ZodRawShape>(
  schema: z.ZodObject<Shape>,
  environment: NodeJS.ProcessEnv,
): z.infer<z.ZodObject<Shape>> {
  const set = Object.fromEntries(Object.entries(environment).filter(([, value]) => value?.trim()));
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`Invalid environment: ${String(issue?.path[0])}: ${issue?.message}`);
  }
  return parsed.data;
}
