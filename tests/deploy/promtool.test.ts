import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ROOT, readText, readYaml } from './support.js';

/**
 * The alert rules and the dashboard's queries checked by Prometheus's own
 * tool (Debian package `prometheus`, which `.ci/run` installs): its parser,
 * its config loader and its rule unit tests, not a regular expression.
 */

function hasPromtool(): boolean {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const HAS_PROMTOOL = hasPromtool();
if (!HAS_PROMTOOL)
  console.warn('promtool not installed (Debian package prometheus): promtool checks skipped');

/** Runs promtool; the result carries its output, to show when it fails. */
function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const directory = mkdtempSync(join(tmpdir(), 'promtool-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

/**
 * A dashboard query as Prometheus receives it: Grafana replaces its
 * variables first (`$__rate_interval` by a range, a multi-value variable by a
 * regex of its values, here any value).
 */
function asPromql(expression: string): string {
  return expression.replaceAll('$__rate_interval', '5m').replace(/\$\{?[a-z_]+\}?/g, '.*');
}

describe.skipIf(!HAS_PROMTOOL)('promtool', () => {
  it('accepts deploy/prometheus/alerts.yml', () => {
    const result = promtool('check', 'rules', 'deploy/prometheus/alerts.yml');
    expect(result.status, result.output).toBe(0);
  });

  it('passes the alert unit tests in deploy/prometheus/alerts.test.yml (MoaRedisDown, deduplicated backlog, workers down)', () => {
    const result = promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml');
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });

  it('loads deploy/prometheus/prometheus.yml with its rule file where compose mounts it', () => {
    // Compose mounts alerts.yml at /etc/prometheus/alerts.yml; here it is beside the config.
    const config = readYaml<{ rule_files: string[] }>('deploy/prometheus/prometheus.yml');
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    writeFileSync(join(directory, 'alerts.yml'), readText('deploy/prometheus/alerts.yml'));
    writeFileSync(join(directory, 'prometheus.yml'), stringify({ ...config, rule_files: ['alerts.yml'] }));
    const result = promtool('check', 'config', join(directory, 'prometheus.yml'));
    expect(result.status, result.output).toBe(0);
  });

  it('parses every query of the Grafana dashboard', () => {
    const dashboard = JSON.parse(readText('deploy/grafana/dashboards/moa-queue.json')) as { panels: Panel[] };
    const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
    const expressions = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    expect(expressions.length).toBeGreaterThan(20);
    // As recording rules, so that `check rules` runs Prometheus's parser on each.
    const rules = expressions.map((expression, index) => ({
      record: `dashboard:query_${index}`,
      expr: asPromql(expression),
    }));
    const file = join(directory, 'dashboard-queries.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const result = promtool('check', 'rules', file);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });
});
