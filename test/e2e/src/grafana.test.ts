import { readFileSync } from "node:fs";
import path from "node:path";
import { createGatewayMetrics } from "@mcp-broker/gateway";
import { createReaperMetrics } from "@mcp-broker/reaper";
import type { SessionStore } from "@mcp-broker/session-store";

/**
 * deploy/grafana/mcp-broker.json against the rules Grafana's dashboard schema (kinds/dashboard,
 * schemaVersion 39) puts on what we use — unique panel ids, a 24-column grid, targets with a
 * refId — and against the code: every metric and label a query names is one the gateway's or
 * the reaper's registry exports (read from the registries, not from a list kept here), and
 * every job is one deploy/prometheus/prometheus.yml scrapes. No Grafana runs here.
 */
const ROOT = path.resolve(__dirname, "../../..");
const dashboard = JSON.parse(readFileSync(path.join(ROOT, "deploy/grafana/mcp-broker.json"), "utf8"));
const prometheusConfig = readFileSync(path.join(ROOT, "deploy/prometheus/prometheus.yml"), "utf8");

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  datasource?: { type: string; uid: string };
}
const panels: Panel[] = dashboard.panels;
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, meant literally.
const DATASOURCE_VARIABLE = "${datasource}";
const queries = panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));

/** Name -> label names, for every metric the code exports (and Prometheus's own `up`). */
function exported(): Map<string, { type: string; labels: Set<string> }> {
  const noStore = { counts: async () => ({ sessions: 0, routes: 0 }) } as unknown as SessionStore;
  const registries = [createGatewayMetrics(noStore).registry, createReaperMetrics().registry];
  const metrics = new Map([["up", { type: "gauge", labels: new Set<string>() }]]);
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      const { name, type, labelNames } = metric as unknown as { name: string; type: string; labelNames?: string[] };
      metrics.set(name, { type, labels: new Set(labelNames ?? []) });
    }
  }
  return metrics;
}
const metrics = exported();
/** Labels Prometheus adds to every scraped series, and the histogram bucket bound. */
const SCRAPE_LABELS = ["job", "instance"];

/** The metric names a PromQL expression reads, with histogram suffixes resolved to the histogram. */
function metricsIn(expr: string): string[] {
  const names = expr.match(/\b(mcpb_[a-z_]+|up)\b/g) ?? [];
  return names.map((name) => {
    const base = name.replace(/_(bucket|sum|count)$/, "");
    return base !== name && metrics.get(base)?.type === "histogram" ? base : name;
  });
}

describe("Grafana dashboard (deploy/grafana/mcp-broker.json)", () => {
  it("has what Grafana needs to import it: title, uid, schemaVersion, a Prometheus data source variable", () => {
    expect(typeof dashboard.title).toBe("string");
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const variable = dashboard.templating.list.find((v: { name: string }) => v.name === "datasource");
    expect(variable).toMatchObject({ type: "datasource", query: "prometheus" });
  });

  it("gives every panel a unique id and a place on the 24-column grid, with no two overlapping", () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const { gridPos: g, title } of panels) {
      expect({
        title,
        ok: [g.h, g.w, g.x, g.y].every(Number.isInteger) && g.w >= 1 && g.x >= 0 && g.x + g.w <= 24,
      }).toEqual({ title, ok: true });
    }
    const overlap = (a: Panel["gridPos"], b: Panel["gridPos"]) =>
      a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    const pairs = panels.flatMap((a, i) =>
      panels
        .slice(i + 1)
        .filter((b) => overlap(a.gridPos, b.gridPos))
        .map((b) => [a.title, b.title]),
    );
    expect(pairs).toEqual([]);
  });

  it("gives every graph queries with unique refIds on the Prometheus variable", () => {
    for (const panel of panels.filter((p) => p.type !== "row")) {
      const targets = panel.targets ?? [];
      expect({ panel: panel.title, targets: targets.length > 0 }).toEqual({ panel: panel.title, targets: true });
      expect(new Set(targets.map((t) => t.refId)).size).toBe(targets.length);
      for (const target of targets) expect(target.datasource?.uid ?? panel.datasource?.uid).toBe(DATASOURCE_VARIABLE);
    }
  });

  it("queries only metrics the gateway and reaper export, by labels they have", () => {
    const problems: string[] = [];
    for (const { panel, target } of queries) {
      const names = metricsIn(target.expr);
      if (names.length === 0) problems.push(`${panel.title}: no metric in ${target.expr}`);
      const labels = new Set([...SCRAPE_LABELS, "le"]);
      for (const name of names) {
        const metric = metrics.get(name);
        if (!metric) problems.push(`${panel.title}: ${name} is not exported`);
        for (const label of metric?.labels ?? []) labels.add(label);
      }
      const used = [
        ...[...target.expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(",")),
        ...[...target.expr.matchAll(/[{,]\s*([a-z_]+)\s*(?:=~|!=|!~|=)/g)].map((m) => m[1] as string),
      ].map((label) => label.trim());
      for (const label of used)
        if (!labels.has(label)) problems.push(`${panel.title}: no label ${label} on ${names.join(", ")}`);
    }
    expect(problems).toEqual([]);
  });

  it("shows every metric the broker defines (the Node process metrics aside)", () => {
    const defined = [...metrics.keys()].filter(
      (name) => name.startsWith("mcpb_") && !/^mcpb_(gateway|reaper)_/.test(name),
    );
    const shown = new Set(queries.flatMap(({ target }) => metricsIn(target.expr)));
    expect(defined.filter((name) => !shown.has(name))).toEqual([]);
  });

  it("names only jobs that deploy/prometheus/prometheus.yml scrapes", () => {
    const jobs = new Set([...prometheusConfig.matchAll(/job_name:\s*(\S+)/g)].map((m) => m[1]));
    const named = queries.flatMap(({ target }) => [...target.expr.matchAll(/job="([^"]+)"/g)].map((m) => m[1]));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((job) => !jobs.has(job))).toEqual([]);
  });
});
