/**
 * The manifests in deploy/kubernetes are validated against the Kubernetes API schemas (the
 * kubernetes-models packages carry the OpenAPI schemas of the API server) and held against the
 * gateway's own configuration schema, the Dockerfile and the kustomization, so they cannot drift.
 */
import { load as loadAll } from 'js-yaml';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { z } from 'zod';
import { loadConfig } from '../../src/config/config.js';
import { variables } from '../../src/config/config.schema.js';

const DIR = fileURLToPath(new URL('../../deploy/kubernetes', import.meta.url));
const read = (name: string): string => readFileSync(join(DIR, name), 'utf8');

const Manifest = z.looseObject({ apiVersion: z.string(), kind: z.string(), metadata: z.looseObject({ name: z.string() }) });
type Manifest = z.infer<typeof Manifest>;

/** Every YAML document in a file (documents are separated by `---`). */
function documents(name: string): Manifest[] {
  return read(name)
    .split(/^---$/m)
    .map((text) => loadAll(text))
    .filter((doc) => doc !== null && doc !== undefined)
    .map((doc) => Manifest.parse(doc));
}

// an empty model filled with the document: the schema check is the model's validate(), not the compiler
const models: Readonly<Record<string, (doc: Manifest) => { validate(): void }>> = {
  'v1/ConfigMap': (doc) => Object.assign(new ConfigMap(), doc),
  'v1/Secret': (doc) => Object.assign(new Secret(), doc),
  'v1/Service': (doc) => Object.assign(new Service(), doc),
  'apps/v1/Deployment': (doc) => Object.assign(new Deployment(), doc),
  'policy/v1/PodDisruptionBudget': (doc) => Object.assign(new PodDisruptionBudget(), doc),
  'monitoring.coreos.com/v1/ServiceMonitor': (doc) => Object.assign(new ServiceMonitor(), doc),
};

const isSecretVariable = (name: string): boolean => Object.entries(variables).some(([key, spec]) => key === name && 'secret' in spec && spec.secret);

const files = readdirSync(DIR).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
const all = files.flatMap((name) => documents(name).map((doc) => ({ file: name, doc })));

function only<T>(kind: string, parse: (doc: Manifest) => T): T {
  const found = all.filter(({ doc }) => doc.kind === kind);
  if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one ${kind}, found ${found.length}`);
  return parse(found[0].doc);
}

const deployment = only('Deployment', (doc) => Object.assign(new Deployment(), doc));
const configMap = only('ConfigMap', (doc) => Object.assign(new ConfigMap(), doc));
const service = only('Service', (doc) => Object.assign(new Service(), doc));
const container = deployment.spec?.template.spec?.containers[0];
const envOf = (name: string): string | undefined => container?.env?.find((entry) => entry.name === name)?.value;

describe('Kubernetes manifests', () => {
  it.each(all.map(({ file, doc }) => [`${file}: ${doc.kind} ${doc.metadata.name}`, doc] as const))('%s is valid against the Kubernetes API schema', (_label, doc) => {
    const model = models[`${doc.apiVersion}/${doc.kind}`];
    if (model === undefined) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
    expect(() => model(doc).validate()).not.toThrow();
  });

  it('lists every manifest but the optional ServiceMonitor and the example Secret in kustomization.yaml', () => {
    const kustomization = z.object({ resources: z.array(z.string()) }).parse(loadAll(read('kustomization.yaml')));
    expect([...kustomization.resources].sort()).toEqual(files.filter((name) => name !== 'servicemonitor.yaml' && name !== 'secret.example.yaml').sort());
  });

  it('configures the gateway with variables the config schema knows, and a configuration that loads', () => {
    const env: Record<string, string> = { ...configMap.data };
    for (const entry of container?.env ?? []) if (entry.value !== undefined) env[entry.name] = entry.value;
    for (const name of Object.keys(env)) {
      const known = name in variables || (name.endsWith('_FILE') && isSecretVariable(name.slice(0, -'_FILE'.length)));
      expect([name, known]).toEqual([name, true]);
    }
    // the secret files are mounted from the Secret at run time; stand in for them here
    const withSecrets = { ...Object.fromEntries(Object.entries(env).filter(([name]) => !name.endsWith('_FILE'))), SESSION_SECRET: 'x'.repeat(32), OIDC_CLIENT_SECRET: 'secret', NODE_ENV: 'production' };
    const config = loadConfig(withSecrets);
    expect(config.session.store).toBe('redis');
    expect(config.warnings).toEqual([]);
  });

  it('takes both secrets from the Secret as files, never as plain values', () => {
    expect(envOf('SESSION_SECRET')).toBeUndefined();
    expect(envOf('OIDC_CLIENT_SECRET')).toBeUndefined();
    const mount = container?.volumeMounts?.find((m) => m.name === 'secrets');
    expect(mount?.readOnly).toBe(true);
    expect(envOf('SESSION_SECRET_FILE')?.startsWith(`${mount?.mountPath ?? '?'}/`)).toBe(true);
    expect(envOf('OIDC_CLIENT_SECRET_FILE')?.startsWith(`${mount?.mountPath ?? '?'}/`)).toBe(true);
    const volume = deployment.spec?.template.spec?.volumes?.find((v) => v.name === 'secrets');
    const secret = only('Secret', (doc) => Object.assign(new Secret(), doc));
    expect(volume?.secret?.secretName).toBe(secret.metadata?.name);
    expect(Object.keys(secret.stringData ?? {}).sort()).toEqual(['oidc-client-secret', 'session-secret']);
  });

  it('runs non-root on a read-only root filesystem with every capability dropped', () => {
    const pod = deployment.spec?.template.spec;
    expect(pod?.securityContext?.runAsNonRoot).toBe(true);
    expect(container?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container?.resources?.requests).toBeDefined();
    expect(container?.resources?.limits?.memory).toBeDefined();
  });

  it('probes /healthz and /readyz on the metrics port, which the public port\'s connection limits do not cover', () => {
    const metricsPort = container?.ports?.find((p) => p.name === 'metrics')?.containerPort;
    expect(String(metricsPort)).toBe(envOf('METRICS_PORT'));
    expect(String(container?.ports?.find((p) => p.name === 'http')?.containerPort)).toBe(envOf('PORT'));
    expect(container?.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'metrics' });
    expect(container?.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'metrics' });
  });

  it('gives in-flight requests SHUTDOWN_GRACE_S before the kubelet kills the pod', () => {
    expect(deployment.spec?.template.spec?.terminationGracePeriodSeconds).toBeGreaterThan(Number(envOf('SHUTDOWN_GRACE_S')));
  });

  it('selects the pods by the same labels in the Deployment, the Service, the PodDisruptionBudget and the ServiceMonitor', () => {
    const labels = deployment.spec?.template.metadata?.labels;
    expect(deployment.spec?.selector.matchLabels).toEqual(labels);
    expect(service.spec?.selector).toEqual(labels);
    expect(only('PodDisruptionBudget', (doc) => Object.assign(new PodDisruptionBudget(), doc)).spec?.selector?.matchLabels).toEqual(labels);
    const monitor = only('ServiceMonitor', (doc) => Object.assign(new ServiceMonitor(), doc));
    expect(monitor.spec.selector.matchLabels).toEqual(service.metadata?.labels);
    expect(monitor.spec.endpoints?.[0]?.port).toBe('metrics');
    expect(service.spec?.ports?.map((p) => p.targetPort)).toEqual(['http', 'metrics']);
  });
});
