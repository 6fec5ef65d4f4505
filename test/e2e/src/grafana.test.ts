import { readFileSync } from "node:fs";
import path from "node:path";
import { createGatewayMetrics } from "@mcp-broker/gateway";
import { createReaperMetrics } from "@mcp-broker/reaper";
import type { SessionStore } from "@mcp-broker/session-store";
import { checkDashboards, SCHEMA_VERSION } from "./grafana-schema.js";

/**
 * deploy/grafana/mcp-broker.json against Grafana's dashboard schema (the `Dashboard` type and the
 * panel plugins' option types of `@grafana/schema`, through `tsc`: see grafana-schema.ts), against
 * the rules Grafana applies beyond it (unique panel ids, a 24-column grid, targets with a refId),
 * and against the code: every metric and label a query names is one the gateway's or the reaper's
 * registry exports (read from the registries, not from a list kept here), and every job is one
 * deploy/prometheus/prometheus.yml scrapes. No Grafana runs here: none installs on this machine.
 */
const ROOT = path.resolve(__dirname, "../../..");
const DASHBOARD_FILE = "deploy/grafana/mcp-broker.json";
const dashboardText = readFileSync(path.join(ROOT, DASHBOARD_FILE), "utf8");
const dashboard = JSON.parse(dashboardText);
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

/** PromQL's keywords and binary operators that read like names. */
const PROMQL_WORDS = new Set("and or unless bool offset by without on ignoring group_left group_right".split(" "));

/**
 * Every metric name a PromQL expression reads, with histogram suffixes resolved to the histogram:
 * each bare name left once strings, label matchers, ranges, groupings and function calls are set
 * aside, so a name the code does not export cannot hide behind a prefix.
 */
function metricsIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const names = [...bare.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)\s*(\()?/g)]
    .filter(([, name, call]) => !call && !PROMQL_WORDS.has(name as string))
    .map(([, name]) => name as string);
  return names.map((name) => {
    const base = name.replace(/_(bucket|sum|count)$/, "");
    return base !== name && metrics.get(base)?.type === "histogram" ? base : name;
  });
}

/** A copy broken once per kind of mistake the schema check must catch, and what tsc says of each. */
function brokenCopy(): { text: string; mistakes: RegExp[] } {
  const copy = structuredClone(dashboard);
  const stat = copy.panels.find((p: Panel) => p.type === "stat");
  // One mistake per panel: tsc reports the first mismatch of each object literal.
  const [graph, other] = copy.panels.filter((p: Panel) => p.type === "timeseries");
  copy.graphTooltip = 5; // DashboardCursorSync is 0, 1 or 2
  stat.gridPos.w = "6"; // GridPos.w is a number
  stat.options.colorMode = "rainbow"; // the stat plugin's BigValueColorMode
  other.fieldconfig = other.fieldConfig; // a misspelt key
  delete graph.targets[0].refId; // DataQuery.refId is required
  const mistakes = [
    /Type '5' is not assignable to type 'DashboardCursorSync/,
    /Type 'string' is not assignable to type 'number'/,
    /Type '"rainbow"' is not assignable to type '"background" \| "background_solid" \| "none" \| "value"/,
    /'"fieldconfig"' does not exist in type 'PluginPanel<"timeseries"/,
    /Property 'refId' is missing/,
  ];
  return { text: JSON.stringify(copy, null, 2), mistakes };
}

describe(`Grafana dashboard (${DASHBOARD_FILE})`, () => {
  const broken = brokenCopy();
  let checked: Map<string, string[]>;
  beforeAll(async () => {
    checked = await checkDashboards([
      { file: DASHBOARD_FILE, text: dashboardText },
      { file: "broken copy", text: broken.text },
    ]);
  });

  it(`fits Grafana's dashboard schema and its panels' plugin schemas (@grafana/schema ${SCHEMA_VERSION})`, () => {
    expect(checked.get(DASHBOARD_FILE)).toEqual([]);
  });

  it("fails the schema check on a copy with a wrong enum, type, plugin option, key name and a missing refId", () => {
    const problems = checked.get("broken copy") ?? [];
    const unmatched = broken.mistakes.filter((mistake) => !problems.some((problem) => mistake.test(problem)));
    expect({ unmatched, count: problems.length }).toEqual({ unmatched: [], count: broken.mistakes.length });
  });

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

  it("reads every metric name out of a query, whatever its prefix", () => {
    const expr =
      'sum by (code) (rate(process_cpu_seconds_total{job="gateway", code=~"A|B"}[5m])) / on (instance) group_left up' +
      " + histogram_quantile(0.95, sum by (le) (rate(mcpb_cold_start_duration_seconds_bucket[$__rate_interval]))) * 1e3";
    expect(metricsIn(expr)).toEqual(["process_cpu_seconds_total", "up", "mcpb_cold_start_duration_seconds"]);
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
