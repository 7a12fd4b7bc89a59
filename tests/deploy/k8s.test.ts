import { execFileSync } from 'node:child_process';
import { posix } from 'node:path';
import { parseMoaConfig } from '@moa-queue/moa';
import { parseAllDocuments } from 'yaml';
import { describe, it, expect } from 'vitest';
import {
  DEFAULT_SHUTDOWN_GRACE_MS,
  PROVIDER_KEY_ENVS,
  ROOT,
  appOfCommand,
  exists,
  filesDirOf,
  imageOwnsDirectory,
  knownEnv,
  listenPort,
  pathsOf,
  readText,
  readYaml,
  readYamlDocuments,
  type App,
} from './support.js';

const BASE = 'deploy/k8s/base';
const OVERLAY = 'deploy/k8s/overlays/example';

interface Kustomization {
  namespace?: string;
  resources?: string[];
  configMapGenerator?: { name: string; behavior?: string; files?: string[]; literals?: string[] }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  patches?: { path?: string; patch?: string; target?: Record<string, string> }[];
  replicas?: { name: string; count: number }[];
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

interface Deployment extends Manifest {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds?: number;
        containers: Container[];
        securityContext?: { runAsGroup?: number; fsGroup?: number };
        volumes?: {
          name: string;
          configMap?: { name: string };
          persistentVolumeClaim?: { claimName: string };
        }[];
      };
    };
  };
}

const kustomization = readYaml<Kustomization>(`${BASE}/kustomization.yaml`);
const overlay = readYaml<Kustomization>(`${OVERLAY}/kustomization.yaml`);
// A missing resource file is reported by the 'lists only resources … that exist' test.
const manifests = (kustomization.resources ?? [])
  .filter((resource) => exists(`${BASE}/${resource}`))
  .flatMap((resource) => readYamlDocuments(`${BASE}/${resource}`) as unknown as Manifest[]);
const ofKind = <T extends Manifest = Manifest>(kind: string) =>
  manifests.filter((manifest) => manifest.kind === kind) as T[];
const deployments = ofKind<Deployment>('Deployment');
const containerOf = (deployment: Deployment) => deployment.spec.template.spec.containers[0]!;
const appOf = (deployment: Deployment): App => appOfCommand(containerOf(deployment).args);
const deploymentOf = (app: App) => deployments.find((deployment) => appOf(deployment) === app)!;

/** Literals of a generated ConfigMap, as a map. */
function generatedLiterals(name: string): Record<string, string> {
  const generator = kustomization.configMapGenerator?.find((entry) => entry.name === name);
  return Object.fromEntries(
    (generator?.literals ?? []).map((literal) => {
      const index = literal.indexOf('=');
      return [literal.slice(0, index), literal.slice(index + 1)];
    }),
  );
}

/** The environment a container gets: envFrom ConfigMaps of this kustomization, then env values. */
function environmentOf(container: Container): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, generatedLiterals(source.configMapRef.name));
  }
  for (const variable of container.env ?? []) env[variable.name] = variable.value;
  return env;
}

/** A named or numbered container port, as a number. */
function portNumber(container: Container, port: string | number): number | undefined {
  return typeof port === 'number'
    ? port
    : container.ports?.find((entry) => entry.name === port)?.containerPort;
}

describe('kustomization', () => {
  it('lists only resources and generator files that exist', () => {
    for (const [directory, file] of [
      [BASE, kustomization],
      [OVERLAY, overlay],
    ] as const) {
      for (const resource of file.resources ?? [])
        expect(exists(posix.join(directory, resource)), resource).toBe(true);
      for (const generator of file.configMapGenerator ?? []) {
        for (const entry of generator.files ?? []) {
          const path = entry.includes('=') ? entry.split('=')[1]! : entry;
          expect(exists(posix.join(directory, path)), path).toBe(true);
        }
      }
      for (const patch of file.patches ?? []) {
        if (patch.path) expect(exists(posix.join(directory, patch.path)), patch.path).toBe(true);
      }
    }
  });

  it('has an API Deployment, Service, HPA and PDB, and a worker Deployment, ScaledObject and PDB', () => {
    expect(deployments.map(appOf).sort()).toEqual(['api', 'worker']);
    expect(ofKind('Service').length).toBeGreaterThanOrEqual(1);
    expect(ofKind('HorizontalPodAutoscaler')).toHaveLength(1);
    expect(ofKind('ScaledObject')).toHaveLength(1);
    expect(ofKind('PodDisruptionBudget')).toHaveLength(2);
  });

  it("uses the kustomization's image name in every container", () => {
    const names = (kustomization.images ?? []).map((image) => image.name);
    for (const deployment of deployments) expect(names).toContain(containerOf(deployment).image);
    expect(overlay.images?.[0]?.name).toBe(containerOf(deployments[0]!).image);
    expect(overlay.images?.[0]?.newTag).toBeTruthy();
  });
});

describe('Deployments', () => {
  it('keep the image entrypoint (tini): args, never command', () => {
    for (const deployment of deployments) {
      expect(containerOf(deployment).command, deployment.metadata.name).toBeUndefined();
      expect(containerOf(deployment).args?.[0]).toBe('node');
    }
  });

  it('select their own pods', () => {
    for (const deployment of deployments) {
      expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    }
  });

  it('set only environment variables that the code reads (env and envFrom ConfigMap keys)', () => {
    for (const deployment of deployments) {
      const known = knownEnv(appOf(deployment));
      const container = containerOf(deployment);
      for (const variable of container.env ?? []) {
        expect(known.has(variable.name), `${deployment.metadata.name}: ${variable.name}`).toBe(true);
      }
      for (const source of container.envFrom ?? []) {
        expect(source.secretRef, 'secrets are referenced key by key').toBeUndefined();
        const name = source.configMapRef!.name;
        expect(kustomization.configMapGenerator?.map((generator) => generator.name)).toContain(name);
        for (const key of Object.keys(generatedLiterals(name))) {
          expect(known.has(key), `${deployment.metadata.name}: ${name}.${key}`).toBe(true);
        }
      }
    }
    // The overlay may change values of the shared ConfigMap, never add unknown names.
    for (const generator of overlay.configMapGenerator ?? []) {
      for (const literal of generator.literals ?? []) {
        const key = literal.split('=')[0]!;
        expect(knownEnv('api').has(key) && knownEnv('worker').has(key), key).toBe(true);
      }
    }
  });

  it('take secrets from secretKeyRef: provider keys optional, API keys and REDIS_URL required', () => {
    const secretRefs = deployments.flatMap((deployment) =>
      (containerOf(deployment).env ?? [])
        .filter((variable) => variable.valueFrom?.secretKeyRef)
        .map((variable) => ({
          app: appOf(deployment),
          name: variable.name,
          ref: variable.valueFrom!.secretKeyRef!,
        })),
    );
    for (const { name, ref } of secretRefs) {
      expect(ref.key, name).toBe(name);
      if (PROVIDER_KEY_ENVS.has(name) || name === 'MOA_WEBHOOK_SECRET') expect(ref.optional, name).toBe(true);
      if (name === 'MOA_API_KEYS' || name === 'REDIS_URL') expect(ref.optional ?? false, name).toBe(false);
    }
    const names = (app: App) => secretRefs.filter((entry) => entry.app === app).map((entry) => entry.name);
    expect(names('api')).toEqual(expect.arrayContaining(['REDIS_URL', 'MOA_API_KEYS', 'MOA_WEBHOOK_SECRET']));
    expect(names('worker')).toEqual(expect.arrayContaining(['REDIS_URL', ...PROVIDER_KEY_ENVS]));
    // No secret as a plain value.
    for (const deployment of deployments) {
      for (const variable of containerOf(deployment).env ?? []) {
        if (/KEY|SECRET|REDIS_URL/.test(variable.name)) expect(variable.value, variable.name).toBeUndefined();
      }
    }
  });

  it('mount the MoA config ConfigMap where MOA_CONFIG points, and the config is valid', () => {
    const files = kustomization.configMapGenerator?.find((generator) => generator.files?.length);
    expect(files).toBeDefined();
    const fileKey = files!.files![0]!.split('=')[0]!;
    for (const deployment of deployments) {
      const container = containerOf(deployment);
      const moaConfig = environmentOf(container).MOA_CONFIG;
      expect(moaConfig).toBeDefined();
      const volume = deployment.spec.template.spec.volumes?.find(
        (entry) => entry.configMap?.name === files!.name,
      );
      expect(volume).toBeDefined();
      const mount = container.volumeMounts?.find((entry) => entry.name === volume!.name);
      expect(posix.join(mount!.mountPath, fileKey)).toBe(moaConfig);
    }
    const config = parseMoaConfig(readYaml(`${BASE}/${fileKey}`), `${BASE}/${fileKey}`);
    expect(Object.keys(config.presets)).toContain(config.defaultPreset);
  });

  it('mount one ReadWriteMany claim where MOA_FILES_DIR points, the same in the API and the workers', () => {
    const mounts = deployments.map((deployment) => {
      const container = containerOf(deployment);
      const directory = filesDirOf(appOf(deployment), environmentOf(container));
      expect(directory, deployment.metadata.name).toBeDefined();
      const mount = container.volumeMounts?.find((entry) => entry.mountPath === directory);
      const volume = deployment.spec.template.spec.volumes?.find((entry) => entry.name === mount?.name);
      expect(volume?.persistentVolumeClaim, deployment.metadata.name).toBeDefined();
      // Pods run as the image's user: the volume must be writable by their group.
      const security = deployment.spec.template.spec.securityContext;
      expect(security?.fsGroup, deployment.metadata.name).toBe(security?.runAsGroup);
      return { directory, claim: volume!.persistentVolumeClaim!.claimName };
    });
    expect(new Set(mounts.map((mount) => `${mount.claim}:${mount.directory}`)).size).toBe(1);
    const claim = ofKind('PersistentVolumeClaim').find((entry) => entry.metadata.name === mounts[0]!.claim);
    // Pods of both Deployments, on any node, mount it at once.
    expect(claim?.spec.accessModes).toEqual(['ReadWriteMany']);
    expect(imageOwnsDirectory(mounts[0]!.directory!)).toBe(true);
  });

  it('probe /readyz (readiness) and /healthz (liveness) on the port each app listens on', () => {
    for (const deployment of deployments) {
      const app = appOf(deployment);
      const container = containerOf(deployment);
      const port = listenPort(app, environmentOf(container));
      for (const [probe, path] of [
        [container.readinessProbe, '/readyz'],
        [container.livenessProbe, '/healthz'],
      ] as const) {
        expect(probe?.httpGet?.path, `${app} probe`).toBe(path);
        expect(pathsOf(app)).toContain(path);
        expect(portNumber(container, probe!.httpGet!.port), `${app} probe port`).toBe(port);
      }
      const annotations = deployment.spec.template.metadata.annotations ?? {};
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(Number(annotations['prometheus.io/port'])).toBe(port);
      expect(pathsOf(app)).toContain(annotations['prometheus.io/path']);
    }
    const worker = containerOf(deploymentOf('worker'));
    expect(worker.ports).toContainEqual({
      name: 'metrics',
      containerPort: listenPort('worker', environmentOf(worker)),
    });
    const api = containerOf(deploymentOf('api'));
    expect(environmentOf(api).HOST).toBe('0.0.0.0');
  });

  it('set resource requests and limits', () => {
    for (const deployment of deployments) {
      const resources = containerOf(deployment).resources;
      expect(resources?.requests?.cpu, deployment.metadata.name).toBeDefined();
      expect(resources?.requests?.memory, deployment.metadata.name).toBeDefined();
      expect(resources?.limits?.memory, deployment.metadata.name).toBeDefined();
    }
  });

  it('give workers a termination grace longer than SHUTDOWN_GRACE_MS plus the longest LLM call', () => {
    const worker = deploymentOf('worker');
    const graceMs = Number(environmentOf(containerOf(worker)).SHUTDOWN_GRACE_MS ?? DEFAULT_SHUTDOWN_GRACE_MS);
    const config = parseMoaConfig(readYaml(`${BASE}/moa.yaml`));
    const longestCallMs = Math.max(
      120_000,
      ...Object.values(config.providers).map((provider) => provider.timeoutMs),
    );
    expect(worker.spec.template.spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(
      graceMs + longestCallMs,
    );
  });
});

describe('Services, HPA, PDBs and KEDA', () => {
  it('route Services to pod ports that exist', () => {
    for (const service of ofKind<
      Manifest & { spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] } }
    >('Service')) {
      const deployment = deployments.find((entry) =>
        Object.entries(service.spec.selector).every(
          ([key, value]) => entry.spec.template.metadata.labels[key] === value,
        ),
      );
      expect(deployment, service.metadata.name).toBeDefined();
      for (const port of service.spec.ports) {
        expect(portNumber(containerOf(deployment!), port.targetPort), service.metadata.name).toBeDefined();
      }
    }
  });

  it('scale the API on CPU', () => {
    const hpa = ofKind<
      Manifest & {
        spec: { scaleTargetRef: { kind: string; name: string }; metrics: { resource?: { name: string } }[] };
      }
    >('HorizontalPodAutoscaler')[0]!;
    expect(hpa.spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: deploymentOf('api').metadata.name,
    });
    expect(hpa.spec.metrics.map((metric) => metric.resource?.name)).toContain('cpu');
  });

  it('protect both Deployments with a PodDisruptionBudget', () => {
    const pdbs = ofKind<Manifest & { spec: { selector: { matchLabels: Record<string, string> } } }>(
      'PodDisruptionBudget',
    );
    for (const deployment of deployments) {
      expect(
        pdbs.some((pdb) =>
          Object.entries(pdb.spec.selector.matchLabels).every(
            ([key, value]) => deployment.spec.template.metadata.labels[key] === value,
          ),
        ),
        deployment.metadata.name,
      ).toBe(true);
    }
  });

  it('scale the worker Deployment with KEDA between 2 and 20 replicas on the Prometheus backlog', () => {
    const scaledObject = ofKind<
      Manifest & {
        spec: {
          scaleTargetRef: { name: string; kind?: string };
          minReplicaCount: number;
          maxReplicaCount: number;
          triggers: { type: string; metadata: Record<string, string> }[];
        };
      }
    >('ScaledObject')[0]!;
    expect(scaledObject.apiVersion).toBe('keda.sh/v1alpha1');
    expect(scaledObject.spec.scaleTargetRef.name).toBe(deploymentOf('worker').metadata.name);
    expect(scaledObject.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    expect(scaledObject.spec.minReplicaCount).toBe(2);
    expect(scaledObject.spec.maxReplicaCount).toBe(20);
    const trigger = scaledObject.spec.triggers[0]!;
    expect(trigger.type).toBe('prometheus');
    expect(trigger.metadata.query).toContain('bullmq_job_count');
    expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
    expect(trigger.metadata.query).toContain(`namespace="${kustomization.namespace}"`);
  });
});

describe('example overlay', () => {
  it('patches containers and env entries that exist in the base', () => {
    for (const patch of overlay.patches ?? []) {
      if (!patch.path) continue;
      for (const document of parseAllDocuments(readText(`${OVERLAY}/${patch.path}`))) {
        const patchManifest = document.toJS() as Deployment;
        const target = deployments.find(
          (deployment) => deployment.metadata.name === patchManifest.metadata.name,
        );
        expect(target, patchManifest.metadata.name).toBeDefined();
        for (const container of patchManifest.spec.template.spec.containers) {
          const baseContainer = target!.spec.template.spec.containers.find(
            (entry) => entry.name === container.name,
          );
          expect(baseContainer, `${patchManifest.metadata.name}/${container.name}`).toBeDefined();
          for (const variable of container.env ?? []) {
            expect(knownEnv(appOf(target!)).has(variable.name), variable.name).toBe(true);
          }
        }
      }
    }
  });

  it('replaces paths that exist in the ScaledObject and sets replicas of existing Deployments', () => {
    const scaledObject = ofKind('ScaledObject')[0]!;
    for (const patch of (overlay.patches ?? []).filter((entry) => entry.patch)) {
      for (const operation of readYamlFromString(patch.patch!) as { op: string; path: string }[]) {
        let node: unknown = scaledObject;
        for (const segment of operation.path.split('/').slice(1)) {
          node = (node as Record<string, unknown>)[segment];
          expect(node, operation.path).toBeDefined();
        }
      }
    }
    for (const replicas of overlay.replicas ?? []) {
      expect(deployments.map((deployment) => deployment.metadata.name)).toContain(replicas.name);
    }
  });

  it.skipIf(!hasKubectl())(
    'builds with kubectl kustomize, generated ConfigMap names wired into the pods',
    () => {
      for (const directory of [BASE, OVERLAY]) {
        const output = execFileSync('kubectl', ['kustomize', directory], { cwd: ROOT, encoding: 'utf8' });
        const built = parseAllDocuments(output).map((document) => document.toJS() as Manifest);
        const configMaps = built
          .filter((manifest) => manifest.kind === 'ConfigMap')
          .map((manifest) => manifest.metadata.name);
        for (const deployment of built.filter((manifest) => manifest.kind === 'Deployment') as Deployment[]) {
          for (const volume of deployment.spec.template.spec.volumes ?? []) {
            if (volume.configMap) expect(configMaps).toContain(volume.configMap.name);
          }
          for (const source of containerOf(deployment).envFrom ?? []) {
            if (source.configMapRef) expect(configMaps).toContain(source.configMapRef.name);
          }
        }
      }
    },
  );
});

function readYamlFromString(text: string): unknown {
  return parseAllDocuments(text)[0]!.toJS();
}

function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
