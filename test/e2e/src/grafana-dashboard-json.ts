import type * as grafana from "@grafana/schema";

/**
 * Grafana's dashboard schema as a JSON file holds it, for grafana-schema.ts to type dashboards by.
 * `@grafana/schema` describes dashboards for TypeScript code; a JSON file differs in two ways.
 */

/** String enums (`LegendDisplayMode.List`) are the strings they stand for (`"list"`). */
export type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer Item)[]
    ? Json<Item>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

/** Grafana merges a panel's saved options over its plugin's defaults: any part may be left out. */
export type Saved<T> = T extends string
  ? `${T}`
  : T extends readonly (infer Item)[]
    ? Saved<Item>[]
    : T extends object
      ? { [K in keyof T]?: Saved<T[K]> }
      : T;

/** A panel of one plugin: its options and custom field config typed by the plugin's schema. */
export type PluginPanel<Type extends string, Options, Custom> = Omit<
  Json<grafana.Panel>,
  "type" | "options" | "fieldConfig" | "targets"
> & {
  type: Type;
  options?: Saved<Options>;
  fieldConfig?: Omit<Json<grafana.FieldConfigSource>, "defaults"> & {
    defaults: Omit<Json<grafana.FieldConfig>, "custom"> & { custom?: Saved<Custom> };
  };
  targets?: Array<Json<grafana.DataQuery> & Record<string, unknown>>;
};

type Row<Panel> = Omit<Json<grafana.RowPanel>, "panels"> & { panels: Panel[] };

/** Narrower than Grafana's Dashboard: fails to compile if it ever is not. */
type Narrower<T extends Json<grafana.Dashboard>> = T;

/** A dashboard whose panels are `Panel` (a union of `PluginPanel`s) or rows of them. */
export type DashboardJson<Panel extends Json<grafana.Panel>> = Narrower<
  Omit<Json<grafana.Dashboard>, "panels"> & { panels?: Array<Panel | Row<Panel>> }
>;
