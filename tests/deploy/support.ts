/**
 * Helpers shared by the deploy tests: reading the repository's deploy files and
 * deriving, from the application sources, what those files may refer to
 * (environment variables, HTTP paths, ports, metric names).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadApiConfig } from '@moa-queue/api';
import { BUILT_IN_PROVIDERS } from '@moa-queue/moa';
import { loadWorkerConfig } from '@moa-queue/worker';
import { parse, parseAllDocuments } from 'yaml';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The text of a file under the repository root. */
export function readText(relative: string): string {
  return readFileSync(join(ROOT, relative), 'utf8');
}

/** Whether a path under the repository root exists. */
export function exists(relative: string): boolean {
  return existsSync(join(ROOT, relative));
}

/** A YAML file parsed with the `yaml` package; throws on a syntax error. */
export function readYaml<T = Record<string, unknown>>(relative: string): T {
  return parse(readText(relative)) as T;
}

/** Every document of a multi-document YAML file; throws on a syntax error in any of them. */
export function readYamlDocuments(relative: string): Record<string, unknown>[] {
  return parseAllDocuments(readText(relative)).map((document) => {
    if (document.errors.length > 0) throw new Error(`${relative}: ${document.errors[0]?.message}`);
    return document.toJS() as Record<string, unknown>;
  });
}

/** Every `.ts` file (tests excluded) under a directory of the repository, recursively. */
export function sourceFiles(relativeDirectory: string): string[] {
  const files: string[] = [];
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(ROOT, relative))) {
      const child = `${relative}/${entry}`;
      if (statSync(join(ROOT, child)).isDirectory()) walk(child);
      else if (child.endsWith('.ts') && !child.endsWith('.test.ts')) files.push(child);
    }
  };
  walk(relativeDirectory);
  return files;
}

/** All capture-group-1 matches of a global regex. */
export function matchAll(text: string, pattern: RegExp): string[] {
  return [...text.matchAll(pattern)].map((match) => match[1]!);
}

// ---------------------------------------------------------------------------
// Environment variables the code reads
// ---------------------------------------------------------------------------

/** The keys of the zod environment schema in a config.ts, the shared ones (libs/contract) included. */
function schemaKeys(relative: string): Set<string> {
  const shared = readText(relative).includes('SHARED_ENVIRONMENT')
    ? matchAll(readText('libs/contract/src/environment.ts'), /^\s+([A-Z][A-Z0-9_]+):/gm)
    : [];
  return new Set([...shared, ...matchAll(readText(relative), /^\s+([A-Z][A-Z0-9_]+):/gm)]);
}

/**
 * Provider key variables of the built-in providers (`apiKeyEnv`): written as
 * `apiKeyEnv: 'X'` in built-in-config.ts, or passed to its `provider()` helper,
 * so both the source text and the exported built-ins are read.
 */
export const PROVIDER_KEY_ENVS: ReadonlySet<string> = new Set([
  ...matchAll(readText('libs/moa/src/built-in-config.ts'), /apiKeyEnv: '([A-Z_]+)'/g),
  ...Object.values(BUILT_IN_PROVIDERS).flatMap((provider) =>
    provider.apiKeyEnv ? [provider.apiKeyEnv] : [],
  ),
]);

/** Variables read by the API process. */
export const API_ENV: ReadonlySet<string> = new Set([...schemaKeys('apps/api/src/config.ts'), 'NODE_ENV']);

/**
 * Variables read by the worker process: its config schema, the provider keys and NODE_ENV.
 * MOA_WEBHOOK_SECRET is accepted as long as the worker's code names it as its input
 * (apps/worker/src/webhooks signs deliveries with it) while it is not yet in the
 * worker's config schema; once it is, this allowance changes nothing.
 */
export const WORKER_ENV: ReadonlySet<string> = new Set([
  ...schemaKeys('apps/worker/src/config.ts'),
  ...PROVIDER_KEY_ENVS,
  'NODE_ENV',
  ...(sourceFiles('apps/worker/src').some((file) => readText(file).includes('MOA_WEBHOOK_SECRET'))
    ? ['MOA_WEBHOOK_SECRET']
    : []),
]);

/** The app a container runs, from its command (the image's default CMD runs the API). */
export type App = 'api' | 'worker';

export function appOfCommand(command: readonly string[] | undefined): App {
  const text = (command ?? []).join(' ');
  if (text.includes('apps/worker/dist/main.js')) return 'worker';
  if (text === '' || text.includes('apps/api/dist/main.js')) return 'api';
  throw new Error(`unknown command: ${text}`);
}

export function knownEnv(app: App): ReadonlySet<string> {
  return app === 'api' ? API_ENV : WORKER_ENV;
}

// ---------------------------------------------------------------------------
// HTTP paths and ports
// ---------------------------------------------------------------------------

/** GET routes registered by the API (`router.get('/x'` / `app.get('/x'`). */
export const API_GET_PATHS: ReadonlySet<string> = new Set(
  sourceFiles('apps/api/src').flatMap((file) => matchAll(readText(file), /\.get\(\s*'(\/[^']*)'/g)),
);

/** Paths served by the worker's metrics server (`path === '/x'`). */
export const WORKER_PATHS: ReadonlySet<string> = new Set(
  matchAll(readText('apps/worker/src/metrics-server.ts'), /path === '(\/[^']*)'/g),
);

export function pathsOf(app: App): ReadonlySet<string> {
  return app === 'api' ? API_GET_PATHS : WORKER_PATHS;
}

function defaultOf(relative: string, variable: string): number {
  const match = new RegExp(`^\\s+${variable}:[^\\n]*\\.default\\(([0-9_]+)\\)`, 'm').exec(readText(relative));
  if (!match) throw new Error(`no default for ${variable} in ${relative}`);
  return Number(match[1]!.replaceAll('_', ''));
}

/** The port variable of each app and its default in the code. */
export const PORT_VARIABLE: Record<App, string> = { api: 'PORT', worker: 'METRICS_PORT' };
export const DEFAULT_PORT: Record<App, number> = {
  api: defaultOf('apps/api/src/config.ts', 'PORT'),
  worker: defaultOf('apps/worker/src/config.ts', 'METRICS_PORT'),
};
export const DEFAULT_SHUTDOWN_GRACE_MS = defaultOf('apps/worker/src/config.ts', 'SHUTDOWN_GRACE_MS');

/** The port an app listens on given its environment (the variable if set, else the code's default). */
export function listenPort(app: App, env: Record<string, string | undefined>): number {
  const value = env[PORT_VARIABLE[app]];
  return value === undefined ? DEFAULT_PORT[app] : Number(value);
}

/** `http://<host>:<port><path>` URLs in a text (health-check commands). */
export function urlsIn(text: string): { port: number; path: string }[] {
  return [...text.matchAll(/http:\/\/[a-z0-9.-]+:(\d+)(\/[a-zA-Z0-9/_-]*)/g)].map((match) => ({
    port: Number(match[1]),
    path: match[2]!,
  }));
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

export interface MetricDefinition {
  name: string;
  type: 'Counter' | 'Gauge' | 'Histogram' | 'Summary';
  labels: string[];
}

/** Metrics registered with prom-client in a source file: `new Counter({ name: '…', … labelNames: […] })`. */
function metricDefinitions(relative: string): MetricDefinition[] {
  const text = readText(relative);
  return [
    ...text.matchAll(/new (Counter|Gauge|Histogram|Summary)\(\{\s*name: '([a-z_]+)'([\s\S]*?)\}\)/g),
  ].map((match) => {
    const labelList = /labelNames: \[([^\]]*)\]/.exec(match[3]!)?.[1] ?? '';
    return {
      type: match[1] as MetricDefinition['type'],
      name: match[2]!,
      labels: matchAll(labelList, /'([a-z_]+)'/g),
    };
  });
}

/** Every metric the worker and the API register, by name. */
export const METRICS: ReadonlyMap<string, MetricDefinition> = new Map(
  [
    ...metricDefinitions('apps/worker/src/metrics.ts'),
    ...metricDefinitions('apps/api/src/metrics.ts'),
    // Both processes export it (createRedisUpGauge).
    ...metricDefinitions('libs/contract/src/redis-up-metric.ts'),
  ].map((metric) => [metric.name, metric]),
);

/** Names registered with `name: '…'` in apps/worker/src/metrics.ts (the brief's cross-check). */
export const WORKER_METRIC_NAMES: ReadonlySet<string> = new Set(
  matchAll(readText('apps/worker/src/metrics.ts'), /name: '([a-z_]+)'/g),
);

/** The API's metrics the deploy files rely on (DESIGN §5). */
export const API_METRIC_NAMES = [
  'bullmq_job_count',
  'moa_http_requests_total',
  'moa_http_request_duration_seconds',
  'moa_redis_up',
];

/** `moa_*` and `bullmq_*` tokens of a PromQL expression (or any text). */
export function metricTokens(text: string): string[] {
  return [...new Set(matchAll(text, /(?<![a-zA-Z0-9_])((?:moa|bullmq)_[a-z_]+)/g))];
}

/**
 * The registered metric a token refers to: the token itself when registered
 * (`bullmq_job_count` is a name, not a histogram's `_count`), else a histogram's
 * `_bucket`/`_sum`/`_count` series. Undefined for an unknown name.
 */
export function resolveMetric(token: string): MetricDefinition | undefined {
  const direct = METRICS.get(token);
  if (direct) return direct;
  const series = /^(.*)_(bucket|sum|count)$/.exec(token);
  if (!series) return undefined;
  const base = METRICS.get(series[1]!);
  return base && (base.type === 'Histogram' || base.type === 'Summary') ? base : undefined;
}

/** Labels a series of a metric can carry: its own, `le` for buckets, and those Prometheus adds. */
export function seriesLabels(token: string): Set<string> {
  const metric = resolveMetric(token);
  const labels = new Set([...(metric?.labels ?? []), 'job', 'instance', 'namespace', 'pod']);
  if (token.endsWith('_bucket')) labels.add('le');
  return labels;
}

/** Label names used in the selectors `metric{label="…", …}` of an expression, per metric token. */
export function selectorLabels(expression: string): { metric: string; label: string }[] {
  return [...expression.matchAll(/((?:moa|bullmq)_[a-z_]+)\{([^}]*)\}/g)].flatMap((match) =>
    matchAll(match[2]!, /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g).map((label) => ({
      metric: match[1]!,
      label,
    })),
  );
}

// ---------------------------------------------------------------------------
// Durations and small parsers
// ---------------------------------------------------------------------------

/** A Compose/Go duration (`90s`, `1m30s`, `1500ms`) in milliseconds. */
export function durationMs(value: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== value) {
    throw new Error(`not a duration: ${value}`);
  }
  const unit = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  return parts.reduce((total, part) => total + Number(part[1]) * unit[part[2] as keyof typeof unit], 0);
}

/** Compose `environment` (a map or a list of `KEY=value`) as a map. */
export function composeEnvironment(environment: unknown): Record<string, string> {
  if (environment === undefined || environment === null) return {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      environment.map((entry: string) => {
        const index = entry.indexOf('=');
        return index === -1 ? [entry, ''] : [entry.slice(0, index), entry.slice(index + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(environment as Record<string, unknown>).map(([key, value]) => [key, String(value ?? '')]),
  );
}

/** Workspace directories (those with a package.json) of the npm workspaces globs `libs/*`, `apps/*`, `tools/*`. */
export function workspaceDirectories(): string[] {
  const globs = (JSON.parse(readText('package.json')) as { workspaces: string[] }).workspaces;
  return globs.flatMap((glob) => {
    const parent = glob.replace(/\/\*$/, '');
    return readdirSync(join(ROOT, parent))
      .map((entry) => `${parent}/${entry}`)
      .filter((directory) => exists(`${directory}/package.json`));
  });
}

/** The package name → directory of every workspace. */
export function workspacePackages(): Map<string, string> {
  return new Map(
    workspaceDirectories().map((directory) => [
      (JSON.parse(readText(`${directory}/package.json`)) as { name: string }).name,
      directory,
    ]),
  );
}

/** A workspace and every workspace it depends on (production dependencies), transitively. */
export function workspaceClosure(directory: string): Set<string> {
  const packages = workspacePackages();
  const closure = new Set<string>();
  const visit = (current: string) => {
    if (closure.has(current)) return;
    closure.add(current);
    const manifest = JSON.parse(readText(`${current}/package.json`)) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const dependency = packages.get(name);
      if (dependency) visit(dependency);
    }
  };
  visit(directory);
  return closure;
}

// ---------------------------------------------------------------------------
// Batch files (MOA_FILES_DIR)
// ---------------------------------------------------------------------------

/**
 * The directory each app's config takes from `MOA_FILES_DIR` (through the
 * real config loaders): what the deployment files must mount.
 */
export function filesDirOf(app: App, environment: Record<string, string | undefined>): string | undefined {
  // Only this variable: the others may be compose interpolations (`${MOA_AUTH:-none}`) or point at files.
  const env = { MOA_FILES_DIR: environment.MOA_FILES_DIR };
  return app === 'api' ? loadApiConfig(env).filesDir : loadWorkerConfig(env).filesDir;
}

/** Whether the image creates `path` owned by its `node` user (a new volume mounted there takes that owner). */
export function imageOwnsDirectory(path: string): boolean {
  return new RegExp(`mkdir -p ${path} && chown node:node ${path}`).test(readText('Dockerfile'));
}
