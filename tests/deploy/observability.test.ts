import { describe, it, expect } from 'vitest';
import {
  API_METRIC_NAMES,
  METRICS,
  WORKER_METRIC_NAMES,
  composeEnvironment,
  listenPort,
  metricTokens,
  pathsOf,
  readText,
  readYaml,
  readYamlDocuments,
  resolveMetric,
  selectorLabels,
  seriesLabels,
} from './support.js';

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  scrape_interval?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type?: string; port?: number }[];
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; current?: { value: unknown } }[] };
}

const prometheus = readYaml<{ global: { scrape_interval: string }; scrape_configs: ScrapeConfig[] }>(
  'deploy/prometheus/prometheus.yml',
);
const compose = readYaml<{ services: Record<string, { environment?: unknown }> }>('docker-compose.yml');
const dashboard = JSON.parse(readText('deploy/grafana/dashboards/moa-queue.json')) as Dashboard;
const allPanels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const dashboardExpressions = [
  ...allPanels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
  ...dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) =>
      typeof variable.query === 'string' ? variable.query : (variable.query as { query: string }).query,
    ),
];
const alertRules = readYaml<{ groups: { rules: { alert: string; expr: string }[] }[] }>(
  'deploy/prometheus/alerts.yml',
).groups.flatMap((group) => group.rules);
const scaledObject = readYamlDocuments('deploy/k8s/base/worker-scaledobject.yaml')[0] as {
  spec: { triggers: { type: string; metadata: { query: string } }[] };
};

/** Every metric name used in `expressions` is registered by the worker or the API, with the labels used. */
function expectRegistered(source: string, expressions: string[]): void {
  const tokens = expressions.flatMap(metricTokens);
  expect(tokens.length, source).toBeGreaterThan(0);
  for (const token of tokens) expect(resolveMetric(token), `${source}: ${token}`).toBeDefined();
  for (const { metric, label } of expressions.flatMap(selectorLabels)) {
    expect(seriesLabels(metric), `${source}: ${metric}{${label}}`).toContain(label);
  }
}

describe('metric names in the code', () => {
  it('agree with the brief: the worker registers its metrics and the API the HTTP and queue metrics', () => {
    for (const name of WORKER_METRIC_NAMES) expect(METRICS.has(name), name).toBe(true);
    for (const name of API_METRIC_NAMES) expect(METRICS.has(name), name).toBe(true);
    expect(METRICS.get('bullmq_job_count')?.type).toBe('Gauge');
    expect(METRICS.get('moa_llm_request_duration_seconds')?.type).toBe('Histogram');
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  const job = (predicate: (config: ScrapeConfig) => boolean) => prometheus.scrape_configs.find(predicate);

  it('scrapes every 15 s', () => {
    expect(prometheus.global.scrape_interval).toBe('15s');
    for (const config of prometheus.scrape_configs) expect(config.scrape_interval ?? '15s').toBe('15s');
  });

  it('scrapes the API at api:8080/metrics', () => {
    const api = job((config) =>
      (config.static_configs ?? []).some((static_) => static_.targets.includes('api:8080')),
    );
    expect(api).toBeDefined();
    const port = listenPort('api', composeEnvironment(compose.services.api?.environment));
    expect(port).toBe(8080);
    expect(pathsOf('api')).toContain(api!.metrics_path ?? '/metrics');
  });

  it('finds every worker replica through DNS (type A) on port 9464', () => {
    const worker = job((config) => (config.dns_sd_configs ?? []).some((sd) => sd.names.includes('worker')));
    expect(worker).toBeDefined();
    const sd = worker!.dns_sd_configs!.find((entry) => entry.names.includes('worker'))!;
    expect(sd.type ?? 'SRV').toBe('A');
    expect(sd.port).toBe(listenPort('worker', composeEnvironment(compose.services.worker?.environment)));
    expect(sd.port).toBe(9464);
    expect(pathsOf('worker')).toContain(worker!.metrics_path ?? '/metrics');
    expect(compose.services).toHaveProperty('worker');
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it('alerts on cost, errors, backlog, unpriced models, webhook failures and Redis outages', () => {
    const used = new Set(
      alertRules.flatMap((rule) => metricTokens(rule.expr)).map((token) => resolveMetric(token)?.name),
    );
    for (const name of [
      'moa_llm_cost_usd_total',
      'moa_llm_request_duration_seconds',
      'bullmq_job_count',
      'moa_llm_cost_unknown_total',
      'moa_webhook_deliveries_total',
      'moa_redis_up',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('uses only registered metrics and labels', () => {
    expectRegistered(
      'alerts.yml',
      alertRules.map((rule) => rule.expr),
    );
  });

  it('is documented in docs/operations.md with the same expressions', () => {
    const docs = readText('docs/operations.md').replaceAll('\\|', '|');
    const normalize = (text: string) => text.replace(/\s+/g, ' ').trim();
    for (const rule of alertRules) {
      expect(normalize(docs), rule.alert).toContain(normalize(rule.expr));
    }
  });
});

describe('deploy/grafana', () => {
  it('provisions the Prometheus datasource with the uid the dashboard defaults to', () => {
    const datasources = readYaml<{ datasources: { uid: string; type: string }[] }>(
      'deploy/grafana/provisioning/datasources/prometheus.yml',
    ).datasources;
    const variable = dashboard.templating.list.find((entry) => entry.type === 'datasource');
    expect(variable?.query).toBe('prometheus');
    expect(datasources).toContainEqual(
      expect.objectContaining({ type: 'prometheus', uid: variable?.current?.value as string }),
    );
    for (const panel of allPanels.filter((entry) => entry.type !== 'row')) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: `\${${variable!.name}}` });
    }
  });

  it('is a dashboard of timeseries panels with unique ids and a recent schema', () => {
    expect(dashboard.uid).toBe('moa-queue');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = allPanels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(allPanels.filter((panel) => panel.type === 'timeseries').length).toBeGreaterThanOrEqual(12);
    for (const panel of allPanels.filter((entry) => entry.type !== 'row')) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });

  it('uses only metric names and labels that the worker and the API register', () => {
    expectRegistered('moa-queue.json', dashboardExpressions);
  });

  it('covers latency, cost, tokens, errors, retries, queue depth, jobs, unpriced calls and webhooks', () => {
    const all = dashboardExpressions.join('\n');
    expect(all).toMatch(
      /histogram_quantile\(0\.5, sum by \(le, layer, role\) \(rate\(moa_llm_request_duration_seconds_bucket/,
    );
    expect(all).toMatch(
      /histogram_quantile\(0\.95, sum by \(le, layer, role\) \(rate\(moa_llm_request_duration_seconds_bucket/,
    );
    expect(all).toMatch(
      /histogram_quantile\(0\.95, sum by \(le, layer, role\) \(rate\(moa_layer_duration_seconds_bucket/,
    );
    expect(all).toMatch(/sum by \(layer, role\) \(rate\(moa_llm_cost_usd_total/);
    expect(all).toMatch(/sum by \(model\) \(rate\(moa_llm_cost_usd_total/);
    expect(all).toMatch(/sum by \(type\) \(rate\(moa_llm_tokens_total/);
    expect(all).toMatch(/moa_llm_request_duration_seconds_count\{[^}]*outcome="error"/);
    expect(all).toMatch(/sum by \(reason\) \(rate\(moa_llm_retries_total/);
    expect(all).toMatch(/sum by \(reason\) \(rate\(moa_llm_finish_reasons_total/);
    expect(all).toMatch(/by \(queue, state\) \(bullmq_job_count/);
    expect(all).toMatch(/sum by \(outcome\) \(rate\(moa_jobs_finished_total/);
    expect(all).toMatch(
      /histogram_quantile\(0\.95, sum by \(le, preset\) \(rate\(moa_job_duration_seconds_bucket/,
    );
    expect(all).toMatch(/moa_job_cost_usd_bucket/);
    expect(all).toMatch(/moa_llm_cost_unknown_total/);
    expect(all).toMatch(/sum by \(outcome\) \(rate\(moa_webhook_deliveries_total/);
    expect(all).toMatch(/sum\(moa_redis_up\)/);
    expect(allPanels.some((panel) => panel.type === 'heatmap')).toBe(true);
  });
});

describe('KEDA query and docs', () => {
  it('scales on metrics and labels the API exports, in states the API reports', () => {
    const trigger = scaledObject.spec.triggers.find((entry) => entry.type === 'prometheus');
    expect(trigger).toBeDefined();
    expectRegistered('worker-scaledobject.yaml', [trigger!.metadata.query]);
    const states = /QUEUE_STATES = \[([^\]]*)\]/.exec(readText('apps/api/src/metrics.ts'))?.[1] ?? '';
    const reported = [...states.matchAll(/'([a-z-]+)'/g)].map((match) => match[1]);
    const used = /state=~"([^"]+)"/.exec(trigger!.metadata.query)?.[1]?.split('|') ?? [];
    expect(used.length).toBeGreaterThan(0);
    for (const state of used) expect(reported, state).toContain(state);
  });

  it('names only registered metrics in docs/operations.md and deploy/k8s/README.md', () => {
    for (const file of ['docs/operations.md', 'deploy/k8s/README.md']) {
      for (const token of metricTokens(readText(file))) {
        expect(resolveMetric(token), `${file}: ${token}`).toBeDefined();
      }
    }
  });
});
