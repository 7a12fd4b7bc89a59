import OpenAI from 'openai';

/** The server the CLI talks to: `MOA_API_URL` (a root URL; a trailing /v1 is accepted) and `MOA_API_KEY`. */
export interface ApiTarget {
  root: string;
  key: string | undefined;
}

/** Reads the API target from the environment. */
export function apiTarget(env: NodeJS.ProcessEnv = process.env): ApiTarget {
  const raw = env.MOA_API_URL?.trim() || 'http://127.0.0.1:8080';
  const root = raw.replace(/\/+$/, '').replace(/\/v1$/, '');
  return { root, key: env.MOA_API_KEY?.trim() || undefined };
}

/** The official OpenAI client pointed at MoA Queue (files and batches). */
export function openaiClient(target: ApiTarget): OpenAI {
  return new OpenAI({
    baseURL: `${target.root}/v1`,
    apiKey: target.key ?? 'none',
    maxRetries: 5,
    timeout: 600_000,
  });
}

/** An error the CLI reports as one line, with an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A JSON request to the API; an OpenAI error object becomes a CliError with its message. */
export async function apiJson<T>(
  target: ApiTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${target.root}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(target.key ? { authorization: `Bearer ${target.key}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new CliError(
      `cannot reach the MoA API at ${target.root} (MOA_API_URL): ${(error as Error).cause ?? (error as Error).message}`,
    );
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const message = (parsed as { error?: { message?: string } }).error?.message ?? text.slice(0, 200);
    throw new CliError(`${method} ${path}: HTTP ${response.status}: ${message}`);
  }
  return parsed as T;
}
