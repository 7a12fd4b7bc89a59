import { posix } from 'node:path';
import { parseMoaConfig } from '@moa-queue/moa';
import { describe, it, expect } from 'vitest';
import { parseCliArguments } from '../../tools/fake-provider/src/cli-options.js';
import {
  DEFAULT_SHUTDOWN_GRACE_MS,
  appOfCommand,
  composeEnvironment,
  durationMs,
  exists,
  filesDirOf,
  imageOwnsDirectory,
  knownEnv,
  listenPort,
  pathsOf,
  readText,
  readYaml,
  urlsIn,
  type App,
} from './support.js';

interface Service {
  image?: string;
  build?: string | { context: string; target?: string };
  command?: string[];
  environment?: unknown;
  env_file?: unknown;
  volumes?: string[];
  ports?: string[];
  profiles?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = readYaml<ComposeFile>('docker-compose.yml');
const simulate = readYaml<ComposeFile>('deploy/compose/simulate.yaml');
const SIMULATE_COMMAND =
  'docker compose -f docker-compose.yml -f deploy/compose/simulate.yaml --profile simulate up --build';

/** Services built from this repository's Dockerfile runtime stage: the API and the worker. */
const appServices = Object.entries(compose.services).filter(
  ([, service]) => typeof service.build === 'object' && service.build.target === 'runtime',
);
const appOf = (service: Service): App => appOfCommand(service.command);
/** Effective environment of a service once the simulate override is applied. */
const environmentOf = (name: string, withSimulate = false): Record<string, string> => ({
  ...composeEnvironment(compose.services[name]?.environment),
  ...(withSimulate ? composeEnvironment(simulate.services[name]?.environment) : {}),
});
/** The container path → host path of a service's bind mounts. */
function bindMounts(service: Service): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const volume of service.volumes ?? []) {
    const [source = '', target = ''] = volume.split(':');
    if (source.startsWith('./')) mounts.set(target, source.slice(2));
  }
  return mounts;
}
/** The host file behind a container path, through the service's bind mounts. */
function hostPathOf(service: Service, containerPath: string): string | undefined {
  for (const [target, source] of bindMounts(service)) {
    if (containerPath === target) return source;
    if (containerPath.startsWith(`${target}/`))
      return posix.join(source, containerPath.slice(target.length + 1));
  }
  return undefined;
}

describe('docker-compose.yml', () => {
  it('has redis, api, worker, prometheus and grafana, and fake-provider only under the simulate profile', () => {
    for (const name of ['redis', 'api', 'worker', 'prometheus', 'grafana', 'fake-provider']) {
      expect(compose.services).toHaveProperty(name);
    }
    expect(compose.services['fake-provider']!.profiles).toEqual(['simulate']);
    for (const [name, service] of Object.entries(compose.services)) {
      if (name !== 'fake-provider') expect(service.profiles, name).toBeUndefined();
    }
    expect(appServices.map(([name]) => name).sort()).toEqual(['api', 'worker']);
  });

  it('runs several worker replicas from the same image as the API', () => {
    const { api, worker } = compose.services;
    expect(worker!.deploy?.replicas).toBeGreaterThanOrEqual(2);
    expect(worker!.image).toBe(api!.image);
    expect(appOf(api!)).toBe('api');
    expect(appOf(worker!)).toBe('worker');
  });

  it('declares every named volume it mounts, and every bind-mounted host path exists', () => {
    const declared = Object.keys(compose.volumes ?? {});
    expect(declared).toContain('redis-data');
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(exists(source.slice(2)), `${name}: ${source}`).toBe(true);
        else expect(declared, `${name}: ${source}`).toContain(source);
      }
    }
    expect(compose.services.redis!.volumes).toContain('redis-data:/data');
  });

  it('runs Redis with AOF and noeviction, and checks it with redis-cli ping', () => {
    const redis = compose.services.redis!;
    const command = (redis.command ?? []).join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.healthcheck?.test.join(' ')).toMatch(/redis-cli ping/);
    for (const [name, service] of appServices) {
      expect(service.depends_on, name).toMatchObject({ redis: { condition: 'service_healthy' } });
    }
  });

  it('gives the app services an optional .env file, the compose Redis and the mounted MoA config', () => {
    for (const [name, service] of appServices) {
      expect(service.env_file, name).toEqual([{ path: '.env', required: false }]);
      const env = environmentOf(name);
      expect(env.REDIS_URL, name).toBe('redis://redis:6379');
      expect(env.MOA_CONFIG, name).toBe('/config/moa.yaml');
      expect(hostPathOf(service, env.MOA_CONFIG!), name).toBe('deploy/config/moa.yaml');
    }
  });

  it('lets the API listen on 0.0.0.0 with MOA_AUTH defaulting to none (local use), published on 8080', () => {
    const env = environmentOf('api');
    expect(env.HOST).toBe('0.0.0.0');
    expect(env.MOA_AUTH).toBe('${MOA_AUTH:-none}');
    const targets = (compose.services.api!.ports ?? []).map((port) => Number(port.split(':').at(-1)));
    expect(targets).toContain(listenPort('api', env));
  });

  it('sets only environment variables that the code reads, on every app service and in the override', () => {
    for (const file of [compose, simulate]) {
      for (const [name, service] of Object.entries(file.services)) {
        const base = compose.services[name]!;
        const env = Object.keys(composeEnvironment(service.environment));
        if (name === 'fake-provider') expect(env).toEqual([]);
        if (!appServices.some(([appName]) => appName === name)) continue;
        for (const variable of env)
          expect(knownEnv(appOf(base)).has(variable), `${name}: ${variable}`).toBe(true);
      }
    }
  });

  it('mounts one named volume where MOA_FILES_DIR points, the same in the API and the workers', () => {
    const mounts = appServices.map(([name, service]) => {
      const directory = filesDirOf(appOf(service), environmentOf(name));
      expect(directory, name).toBeDefined();
      const volumes = (service.volumes ?? []).filter((volume) => volume.split(':')[1] === directory);
      expect(volumes, name).toHaveLength(1);
      return { directory, source: volumes[0]!.split(':')[0]! };
    });
    // One directory on one volume: a file the API writes is the file a worker reads.
    expect(new Set(mounts.map((mount) => `${mount.source}:${mount.directory}`)).size).toBe(1);
    expect(Object.keys(compose.volumes ?? {})).toContain(mounts[0]!.source);
    expect(imageOwnsDirectory(mounts[0]!.directory!)).toBe(true);
  });

  it('health-checks the API and the workers on paths and ports they serve', () => {
    for (const [name, service] of appServices) {
      const app = appOf(service);
      const urls = urlsIn(service.healthcheck?.test.join(' ') ?? '');
      expect(urls, name).toHaveLength(1);
      expect(urls[0]!.port, name).toBe(listenPort(app, environmentOf(name)));
      expect(pathsOf(app), name).toContain(urls[0]!.path);
    }
  });

  it('gives stopping workers longer than SHUTDOWN_GRACE_MS', () => {
    const worker = compose.services.worker!;
    const graceMs = Number(environmentOf('worker').SHUTDOWN_GRACE_MS ?? DEFAULT_SHUTDOWN_GRACE_MS);
    expect(worker.stop_grace_period).toBeDefined();
    expect(durationMs(worker.stop_grace_period!)).toBeGreaterThan(graceMs);
  });

  it('mounts the Prometheus config and alert rules, and the Grafana provisioning and dashboards', () => {
    const prometheus = bindMounts(compose.services.prometheus!);
    expect(prometheus.get('/etc/prometheus/prometheus.yml')).toBe('deploy/prometheus/prometheus.yml');
    const rules = readYaml<{ rule_files?: string[] }>('deploy/prometheus/prometheus.yml').rule_files ?? [];
    for (const rule of rules) expect(prometheus.has(rule), rule).toBe(true);

    const grafana = bindMounts(compose.services.grafana!);
    expect(grafana.get('/etc/grafana/provisioning/datasources')).toBe(
      'deploy/grafana/provisioning/datasources',
    );
    expect(grafana.get('/etc/grafana/provisioning/dashboards')).toBe(
      'deploy/grafana/provisioning/dashboards',
    );
    const providers = readYaml<{ providers: { options: { path: string } }[] }>(
      'deploy/grafana/provisioning/dashboards/dashboards.yml',
    ).providers;
    for (const provider of providers) {
      expect(grafana.get(provider.options.path)).toBe('deploy/grafana/dashboards');
    }
    const datasources = readYaml<{ datasources: { url: string }[] }>(
      'deploy/grafana/provisioning/datasources/prometheus.yml',
    ).datasources;
    expect(datasources.map((datasource) => new URL(datasource.url).hostname)).toContain('prometheus');
  });
});

describe('simulate profile', () => {
  const fake = compose.services['fake-provider']!;
  const fakeArguments = () => {
    const command = fake.command ?? [];
    const entry = command.indexOf('tools/fake-provider/src/main.ts');
    expect(entry).toBeGreaterThan(0);
    return { command, cli: parseCliArguments(command.slice(entry + 1)) };
  };

  it('runs the fake provider from the build stage with tsx, on 0.0.0.0 with a realistic latency', () => {
    expect(fake.build).toMatchObject({ context: '.', target: 'build' });
    const { command, cli } = fakeArguments();
    expect(command.slice(0, 4)).toEqual(['node', '--conditions=development', '--import', 'tsx']);
    expect(exists('tools/fake-provider/src/main.ts')).toBe(true);
    expect(cli.help).toBe(false);
    if (cli.help) return;
    expect(cli.options.host).toBe('0.0.0.0');
    expect(cli.options.port).toBe(8000);
    expect(cli.options.defaultLatencyMs).toBeGreaterThanOrEqual(500);
    const urls = urlsIn(fake.healthcheck?.test.join(' ') ?? '');
    expect(urls).toEqual([{ port: 8000, path: '/v1/models' }]);
    expect(readText('tools/fake-provider/src/fake-provider.ts')).toContain("case 'GET /v1/models'");
  });

  it('overrides only existing app services, pointing them at moa.simulate.yaml', () => {
    expect(Object.keys(simulate.services).sort()).toEqual(['api', 'worker']);
    for (const name of ['api', 'worker']) {
      const env = environmentOf(name, true);
      expect(env.MOA_CONFIG).toBe('/config/moa.simulate.yaml');
      expect(hostPathOf(compose.services[name]!, env.MOA_CONFIG!)).toBe('deploy/config/moa.simulate.yaml');
    }
    expect(simulate.services.worker!.depends_on).toMatchObject({
      'fake-provider': { condition: 'service_healthy' },
    });
  });

  it('points providers at the fake-provider service and sets their key variables on the workers', () => {
    const { cli } = fakeArguments();
    const config = parseMoaConfig(readYaml('deploy/config/moa.simulate.yaml'), 'moa.simulate.yaml');
    const simulated = Object.values(config.providers).filter(
      (provider) => new URL(provider.baseURL).hostname === 'fake-provider',
    );
    expect(simulated.map((provider) => provider.name)).toContain('together');
    const workerEnv = environmentOf('worker', true);
    for (const provider of simulated) {
      const url = new URL(provider.baseURL);
      expect(Number(url.port)).toBe(cli.help ? undefined : cli.options.port);
      expect(url.pathname).toBe('/v1');
      if (provider.apiKeyEnv) expect(workerEnv[provider.apiKeyEnv], provider.apiKeyEnv).toBeTruthy();
    }
    // Every preset of the simulation runs on the fake only.
    for (const preset of Object.values(config.presets)) {
      for (const agent of [...preset.layers.flat(), preset.aggregator]) {
        const provider = agent.model.split('/')[0]!;
        expect(
          simulated.map((entry) => entry.name),
          `${preset.name}: ${agent.model}`,
        ).toContain(provider);
      }
    }
  });

  it('is documented with the exact command in docs/operations.md and in both compose files', () => {
    expect(readText('docs/operations.md')).toContain(SIMULATE_COMMAND);
    expect(readText('docker-compose.yml')).toContain(SIMULATE_COMMAND);
    expect(readText('deploy/compose/simulate.yaml')).toContain(SIMULATE_COMMAND);
  });
});
