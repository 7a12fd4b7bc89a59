import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleChatCompletion, type ChatCompletionContext } from './chat-completions-handler.js';
import { HttpError, readJsonBody, sendError, sendJson } from './http-io.js';
import type { RecordedRequest } from './recorded-request.js';
import { ScriptBook } from './script-book.js';
import {
  InvalidScriptError,
  parseModelBehaviour,
  parseScriptedAction,
  type ModelBehaviour,
  type ScriptedAction,
} from './scripted-action.js';

/** Options for {@link createFakeProvider}. */
export interface FakeProviderOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @defaultValue 0
   */
  port?: number;
  /**
   * Interface to listen on. Loopback by default, so a test run never exposes it.
   * @defaultValue '127.0.0.1'
   */
  host?: string;
  /**
   * Milliseconds before the response headers (streaming: the first chunk) of every answer.
   * @defaultValue 0
   */
  defaultLatencyMs?: number;
  /** Latency per model id, overriding `defaultLatencyMs`. */
  latencyMs?: Record<string, number>;
  /**
   * Milliseconds before each streamed word chunk.
   * @defaultValue 0
   */
  tokenIntervalMs?: number;
  /**
   * Words in a generated answer (one word is one completion token), capped by the request's `max_tokens`.
   * @defaultValue 40
   */
  outputWords?: number;
  /** When set, requests to `/v1/*` must send `Authorization: Bearer <requireApiKey>` or get 401. */
  requireApiKey?: string;
  /**
   * The ids `GET /v1/models` lists, exactly, as a real provider lists what it
   * serves. Unset: the models seen in requests, then those with configured latency.
   */
  models?: string[];
  /**
   * Context windows in tokens by model id: a request to one of these models
   * whose prompt (counted by `countWindowTokens`: `o200k_base` plus OpenAI's
   * chat overhead) plus its `max_tokens` (0 when unset) is larger gets
   * OpenAI's 400 `context_length_exceeded`, before any script or behaviour
   * is applied. Other models take prompts of any size.
   */
  contextWindows?: Record<string, number>;
}

/** A running fake OpenAI-compatible provider. */
export interface FakeProvider {
  /** Base URL ending in `/v1`, ready for `new OpenAI({ baseURL })`. */
  readonly url: string;
  readonly port: number;
  /** Every chat completion request, in arrival order. Cleared in place by {@link FakeProvider.reset}. */
  readonly requests: RecordedRequest[];
  /**
   * Queues one-shot actions for the next requests to `model`, consumed in
   * order. Model `'*'` matches any model, but only when that model has no
   * queued action of its own.
   * @throws InvalidScriptError for a malformed action.
   */
  script(model: string, ...actions: ScriptedAction[]): void;
  /** Sets the persistent behaviour of `model` (`'*'` for all models without their own); `undefined` clears it. */
  setBehaviour(model: string, behaviour: ModelBehaviour | undefined): void;
  /** How many requests (to `model`, or to any model) are held now by a `hold` action or behaviour. */
  held(model?: string): number;
  /**
   * Lets the requests held now (to `model`, or all) answer, each after its
   * latency; requests that arrive later are held again if their script or
   * behaviour says so. Returns how many were released.
   */
  release(model?: string): number;
  /**
   * Sets the ids `GET /v1/models` lists (as the `models` option); `undefined`
   * goes back to listing the models seen and configured.
   */
  setModels(models: string[] | undefined): void;
  /**
   * Enforces a context window of `tokens` on `model` (as the
   * `contextWindows` option); `undefined` lifts it.
   */
  setContextWindow(model: string, tokens: number | undefined): void;
  /**
   * Clears recorded requests, scripts and behaviours, and releases every held
   * request; the model list and the context windows go back to their options.
   */
  reset(): void;
  /** Stops listening and destroys open sockets, hanging requests included, so it never waits on a client. */
  close(): Promise<void>;
}

interface Settings {
  port: number;
  host: string;
  defaultLatencyMs: number;
  latencyMs: Record<string, number>;
  tokenIntervalMs: number;
  outputWords: number;
  requireApiKey?: string;
  models?: string[];
  contextWindows: Record<string, number>;
}

function nonNegative(name: string, value: number | undefined, fallback: number, integer = false): number {
  const resolved = value ?? fallback;
  if (!Number.isFinite(resolved) || resolved < 0 || (integer && !Number.isInteger(resolved))) {
    throw new RangeError(`${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${resolved}`);
  }
  return resolved;
}

function resolveSettings(options: FakeProviderOptions): Settings {
  const latencyMs: Record<string, number> = {};
  for (const [model, ms] of Object.entries(options.latencyMs ?? {})) {
    latencyMs[model] = nonNegative(`latencyMs[${model}]`, ms, 0);
  }
  const port = nonNegative('port', options.port, 0, true);
  if (port > 65_535) throw new RangeError(`port must be at most 65535, got ${port}`);
  return {
    port,
    host: options.host ?? '127.0.0.1',
    defaultLatencyMs: nonNegative('defaultLatencyMs', options.defaultLatencyMs, 0),
    latencyMs,
    tokenIntervalMs: nonNegative('tokenIntervalMs', options.tokenIntervalMs, 0),
    outputWords: nonNegative('outputWords', options.outputWords, 40, true),
    requireApiKey: options.requireApiKey,
    models: options.models === undefined ? undefined : checkModelIds(options.models),
    contextWindows: Object.fromEntries(
      Object.entries(options.contextWindows ?? {}).map(([model, tokens]) => [
        model,
        checkContextWindow(model, tokens),
      ]),
    ),
  };
}

function checkContextWindow(model: string, tokens: number): number {
  if (!Number.isInteger(tokens) || tokens < 1) {
    throw new RangeError(`contextWindows[${model}] must be a positive integer, got ${tokens}`);
  }
  return tokens;
}

/** A copy of a model list, checked: non-empty strings. */
function checkModelIds(models: unknown): string[] {
  if (!Array.isArray(models) || !models.every((id) => typeof id === 'string' && id !== '')) {
    throw new TypeError('models must be an array of non-empty strings');
  }
  return [...(models as string[])];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads the `{ model, ... }` body every control endpoint takes. */
async function readControlBody(
  request: IncomingMessage,
): Promise<Record<string, unknown> & { model: string }> {
  const body = await readJsonBody(request);
  if (!isRecord(body) || typeof body.model !== 'string' || body.model === '') {
    throw new HttpError(400, 'the body must be a JSON object with a non-empty string model');
  }
  return body as Record<string, unknown> & { model: string };
}

/** Runs a control-endpoint step, turning a malformed script into a 400 rather than a 500. */
function asBadRequest<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof InvalidScriptError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** `[::1]` in URLs, `127.0.0.1` as is. */
function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts a fake OpenAI-compatible provider over real HTTP, so clients
 * exercise their actual networking, retry and streaming code.
 *
 * Serves `POST /v1/chat/completions` and `GET /v1/models`, plus control
 * endpoints for driving it from another process: `POST /__control/script`
 * (`{ model, actions }`), `POST /__control/behaviour` (`{ model, behaviour }`),
 * `POST /__control/release` (`{ model? }`, answers `{ released }`),
 * `POST /__control/models` (`{ models: [ids] }`, or `null` for the default
 * listing), `POST /__control/context-window` (`{ model, tokens }`, `tokens`
 * null to lift it), `GET /__control/requests` and `POST /__control/reset`.
 */
export async function createFakeProvider(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const settings = resolveSettings(options);
  const requests: RecordedRequest[] = [];
  const book = new ScriptBook();

  // Requests waiting for release(), in arrival order.
  const holds: { model: string; release: () => void }[] = [];
  const hold = (model: string, signal: AbortSignal) =>
    new Promise<boolean>((resolve) => {
      if (signal.aborted) return resolve(false);
      const entry = {
        model,
        release: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = () => {
        holds.splice(holds.indexOf(entry), 1);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      holds.push(entry);
    });
  const held = (model?: string) =>
    holds.filter((entry) => model === undefined || entry.model === model).length;
  const release = (model?: string) => {
    const released = holds.filter((entry) => model === undefined || entry.model === model);
    for (const entry of released) holds.splice(holds.indexOf(entry), 1);
    for (const entry of released) entry.release();
    return released.length;
  };

  // Copied: setContextWindow changes this provider's windows, never the options object.
  let contextWindows = { ...settings.contextWindows };
  const context: ChatCompletionContext = {
    book,
    contextWindowOf: (model) => (Object.hasOwn(contextWindows, model) ? contextWindows[model] : undefined),
    requests,
    outputWords: settings.outputWords,
    tokenIntervalMs: settings.tokenIntervalMs,
    latencyFor: (model) => settings.latencyMs[model] ?? settings.defaultLatencyMs,
    isAuthorized: (authorization) =>
      settings.requireApiKey === undefined || authorization === `Bearer ${settings.requireApiKey}`,
    hold,
  };

  const script = (model: string, ...actions: ScriptedAction[]) => {
    book.script(model, actions.map(parseScriptedAction));
  };
  const setBehaviour = (model: string, behaviour: ModelBehaviour | undefined) => {
    book.setBehaviour(model, parseModelBehaviour(behaviour));
  };
  // What GET /v1/models lists; undefined: the models seen and configured.
  let listedModels = settings.models;
  const setModels = (models: string[] | undefined) => {
    listedModels = models === undefined ? undefined : checkModelIds(models);
  };
  const setContextWindow = (model: string, tokens: number | undefined) => {
    if (tokens === undefined) {
      const { [model]: _lifted, ...rest } = contextWindows;
      contextWindows = rest;
    } else {
      contextWindows = { ...contextWindows, [model]: checkContextWindow(model, tokens) };
    }
  };
  const reset = () => {
    listedModels = settings.models;
    contextWindows = { ...settings.contextWindows };
    requests.length = 0; // in place, so a test holding `provider.requests` sees the reset
    book.clear();
    release(); // nothing stays held into the next test
  };

  /** The configured list; else models seen in requests, then those with configured latency, each once. */
  const listModels = () => {
    const ids =
      listedModels ??
      new Set([...requests.map((request) => request.model), ...Object.keys(settings.latencyMs)]);
    return {
      object: 'list',
      data: [...ids].map((id) => ({ id, object: 'model', created: 0, owned_by: 'fake-provider' })),
    };
  };

  const route = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const { pathname } = new URL(request.url ?? '/', 'http://fake-provider');
    const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
    const endpoint = `${request.method ?? 'GET'} ${path}`;
    switch (endpoint) {
      case 'POST /v1/chat/completions':
        return handleChatCompletion(context, request, response);
      case 'GET /v1/models':
        if (!context.isAuthorized(request.headers.authorization)) return sendError(response, 401);
        return sendJson(response, 200, listModels());
      case 'POST /__control/script': {
        const body = await readControlBody(request);
        if (!Array.isArray(body.actions)) throw new HttpError(400, 'actions must be an array');
        const actions = body.actions as unknown[];
        asBadRequest(() => book.script(body.model, actions.map(parseScriptedAction)));
        return sendJson(response, 200, { ok: true });
      }
      case 'POST /__control/behaviour': {
        const body = await readControlBody(request);
        asBadRequest(() => book.setBehaviour(body.model, parseModelBehaviour(body.behaviour)));
        return sendJson(response, 200, { ok: true });
      }
      case 'POST /__control/release': {
        const body = await readJsonBody(request);
        const model = isRecord(body) ? body.model : undefined;
        if (model !== undefined && typeof model !== 'string')
          throw new HttpError(400, 'model must be a string');
        return sendJson(response, 200, { released: release(model) });
      }
      case 'POST /__control/models': {
        const body = await readJsonBody(request);
        const models = isRecord(body) ? body.models : undefined;
        if (models === null) {
          setModels(undefined);
        } else {
          try {
            setModels(checkModelIds(models));
          } catch (error) {
            throw new HttpError(400, (error as Error).message);
          }
        }
        return sendJson(response, 200, { ok: true });
      }
      case 'POST /__control/context-window': {
        const body = await readControlBody(request);
        const { tokens } = body;
        if (tokens !== null && typeof tokens !== 'number') {
          throw new HttpError(400, 'tokens must be a positive integer, or null to lift the window');
        }
        try {
          setContextWindow(body.model, tokens ?? undefined);
        } catch (error) {
          throw new HttpError(400, (error as Error).message);
        }
        return sendJson(response, 200, { ok: true });
      }
      case 'GET /__control/requests':
        return sendJson(response, 200, requests);
      case 'POST /__control/reset':
        request.resume(); // any body is irrelevant, but must be consumed for keep-alive
        reset();
        return sendJson(response, 200, { ok: true });
      default:
        request.resume();
        return sendError(response, 404, `Unknown request URL: ${endpoint}.`);
    }
  };

  // Responses still open, so close() can wait until each has recorded its outcome.
  const openResponses = new Set<ServerResponse>();
  const server = createServer((request, response) => {
    openResponses.add(response);
    response.once('close', () => openResponses.delete(response));
    route(request, response).catch((error: unknown) => {
      if (error instanceof HttpError) return sendError(response, error.status, error.message);
      // A bug in the fake, not a scripted failure: make it loud, but keep serving.
      console.error('[fake-provider] unexpected error:', error);
      if (response.headersSent) response.destroy();
      else sendError(response, 500, 'fake provider internal error');
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const responsesClosed = [...openResponses].map((response) => once(response, 'close'));
      const serverClosed = new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
      });
      // server.close() alone waits for in-flight responses; a hanging request has none coming.
      server.closeAllConnections();
      // Destroyed sockets close their responses on a later tick; wait, so every record is settled (499).
      await Promise.all([serverClosed, ...responsesClosed]);
    })();
    return closing;
  };

  return {
    url: `http://${urlHost(settings.host)}:${port}/v1`,
    port,
    requests,
    script,
    setBehaviour,
    held,
    release,
    setModels,
    setContextWindow,
    reset,
    close,
  };
}
