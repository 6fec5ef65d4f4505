import {
  brokerLabelFilter,
  type EnginePolicy,
  isAllowedImage,
  PEER_LABEL,
  PER_USER_NETWORK,
} from "@mcp-broker/container-manager";
import type { GuardRole } from "./config.js";

/** The Engine API calls the guard knows; every other path and method is refused. */
export type OperationName =
  | "ping"
  | "version"
  | "info"
  | "list"
  | "create"
  | "inspect"
  | "logs"
  | "start"
  | "stop"
  | "kill"
  | "wait"
  | "remove"
  | "image-inspect"
  | "image-pull"
  | NetworkOperationName;

/** Backend networks (`GUARD_NETWORK=per-user`, networks.ts): refused under any other policy. */
export type NetworkOperationName =
  | "network-list"
  | "network-create"
  | "network-inspect"
  | "network-connect"
  | "network-disconnect"
  | "network-remove";

/** One allowed call, rebuilt from what was checked: only this is ever sent to the engine. */
export interface Operation {
  name: OperationName;
  /** `/v1.41`, or "" for the engine's own version. */
  version: string;
  /** The container (or network) reference from the path (name or id), resolved before anything is sent. */
  ref?: string;
  /** The image from the path or query, one of the policy's. */
  image?: string;
  /** Only the allow-listed parameters, validated; everything else the client sent is dropped. */
  query: URLSearchParams;
}

export type Parsed = { ok: true; operation: Operation } | { ok: false; reason: string };

const BOOL = /^(true|false|1|0)$/i;
const INT = /^\d{1,10}$/;
const SIGNAL = /^(SIG)?[A-Z0-9+]{1,12}$|^\d{1,2}$/;
const TIME = /^\d{1,12}(\.\d{1,9})?$/;
const ANY = /^[\s\S]{0,4096}$/;
/** Docker's own name rule: no `/`, `%` or `..`, so a reference cannot climb to another path. */
const REF = "([A-Za-z0-9][A-Za-z0-9_.-]{0,127})";

interface Route {
  name: OperationName;
  methods: readonly string[];
  path: RegExp;
  query: Readonly<Record<string, RegExp>>;
  /** One path, two calls: the call a method other than the first names. */
  byMethod?: Readonly<Record<string, OperationName>>;
}

const ROUTES: readonly Route[] = [
  { name: "ping", methods: ["GET", "HEAD"], path: /^\/_ping$/, query: {} },
  { name: "version", methods: ["GET"], path: /^\/version$/, query: {} },
  { name: "info", methods: ["GET"], path: /^\/info$/, query: {} },
  { name: "list", methods: ["GET"], path: /^\/containers\/json$/, query: { all: BOOL, limit: INT, size: BOOL } },
  {
    name: "create",
    methods: ["POST"],
    path: /^\/containers\/create$/,
    query: { name: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/ },
  },
  { name: "inspect", methods: ["GET"], path: new RegExp(`^/containers/${REF}/json$`), query: { size: BOOL } },
  {
    name: "logs",
    methods: ["GET"],
    path: new RegExp(`^/containers/${REF}/logs$`),
    query: {
      stdout: BOOL,
      stderr: BOOL,
      follow: BOOL,
      timestamps: BOOL,
      tail: /^(all|\d{1,6})$/,
      since: TIME,
      until: TIME,
    },
  },
  { name: "start", methods: ["POST"], path: new RegExp(`^/containers/${REF}/start$`), query: {} },
  { name: "stop", methods: ["POST"], path: new RegExp(`^/containers/${REF}/stop$`), query: { t: INT, signal: SIGNAL } },
  { name: "kill", methods: ["POST"], path: new RegExp(`^/containers/${REF}/kill$`), query: { signal: SIGNAL } },
  {
    name: "wait",
    methods: ["POST"],
    path: new RegExp(`^/containers/${REF}/wait$`),
    query: { condition: /^(not-running|next-exit|removed)$/ },
  },
  // `link=true` would remove a link between two other containers: not in the list.
  { name: "remove", methods: ["DELETE"], path: new RegExp(`^/containers/${REF}$`), query: { force: BOOL, v: BOOL } },
  { name: "image-inspect", methods: ["GET"], path: /^\/images\/(.+)\/json$/, query: {} },
  { name: "image-pull", methods: ["POST"], path: /^\/images\/create$/, query: { fromImage: ANY, tag: ANY } },
  { name: "network-list", methods: ["GET"], path: /^\/networks$/, query: {} },
  { name: "network-create", methods: ["POST"], path: /^\/networks\/create$/, query: {} },
  {
    name: "network-inspect",
    methods: ["GET", "DELETE"],
    byMethod: { DELETE: "network-remove" },
    path: new RegExp(`^/networks/${REF}$`),
    query: {},
  },
  { name: "network-connect", methods: ["POST"], path: new RegExp(`^/networks/${REF}/connect$`), query: {} },
  { name: "network-disconnect", methods: ["POST"], path: new RegExp(`^/networks/${REF}/disconnect$`), query: {} },
];

const ALL = new Set(ROUTES.map((route) => route.name));
/**
 * What each role may call. The reaper only lists, inspects and removes backends (apps/reaper
 * sweep.ts): a guard in its role cannot create, start or pull anything, so the reaper's own
 * internet-facing dashboard is no way to a new container.
 */
const ROLES: Readonly<Record<GuardRole, ReadonlySet<OperationName>>> = {
  gateway: ALL,
  // Networks: a reaper joins the backend networks (to end idle sessions) and prunes those left
  // behind; it creates none.
  reaper: new Set<OperationName>([
    "ping",
    "version",
    "list",
    "inspect",
    "stop",
    "remove",
    "network-list",
    "network-inspect",
    "network-connect",
    "network-disconnect",
    "network-remove",
  ]),
};

/**
 * Below 1.24 the engine applies a HostConfig sent with `start` (a second way to ask for
 * privileges), and older versions read create bodies differently: only versions whose
 * semantics the policy was written against pass.
 */
const MIN_API_VERSION = [1, 40] as const;

const refuse = (reason: string): Parsed => ({ ok: false, reason });

/** Decides whether one request is an allowed call for this role, and rebuilds it from checked parts. */
export function parseRequest(method: string, url: URL, role: GuardRole, policy: EnginePolicy): Parsed {
  const versioned = /^\/v(\d{1,2})\.(\d{1,3})(\/.*)$/.exec(url.pathname);
  const [major, minor] = versioned ? [Number(versioned[1]), Number(versioned[2])] : [];
  if (major !== undefined && minor !== undefined) {
    if (major < MIN_API_VERSION[0] || (major === MIN_API_VERSION[0] && minor < MIN_API_VERSION[1])) {
      return refuse(`API version ${major}.${minor} is older than ${MIN_API_VERSION.join(".")}`);
    }
  }
  const version = versioned ? `/v${major}.${minor}` : "";
  const path = versioned?.[3] ?? url.pathname;

  const route = ROUTES.find((candidate) => candidate.path.test(path));
  if (!route) return refuse(`${path} is not an Engine API call the broker makes`);
  if (!route.methods.includes(method)) return refuse(`${method} ${path} is not allowed`);
  const name = route.byMethod?.[method] ?? route.name;
  if (!ROLES[role].has(name)) return refuse(`${name} is not allowed for the ${role} role`);
  if (name.startsWith("network-") && policy.network !== PER_USER_NETWORK) {
    return refuse(`${name} is allowed only with per-user backend networks (GUARD_NETWORK=${PER_USER_NETWORK})`);
  }

  const query = new URLSearchParams();
  for (const [key, pattern] of Object.entries(route.query)) {
    const value = url.searchParams.get(key);
    if (value === null) continue;
    if (!pattern.test(value)) return refuse(`query parameter ${key} has an unexpected value`);
    query.set(key, value);
  }
  const operation: Operation = { name, version, query };
  const captured = route.path.exec(path)?.[1];
  if (name === "image-inspect") return imageInspect(operation, captured ?? "", policy);
  if (name === "image-pull") return imagePull(operation, policy);
  if (name === "list" || name === "network-list") {
    return restrictList(operation, url.searchParams.get("filters"), policy);
  }
  if (captured) operation.ref = captured;
  return { ok: true, operation };
}

function imageInspect(operation: Operation, encoded: string, policy: EnginePolicy): Parsed {
  let image: string;
  try {
    image = decodeURIComponent(encoded);
  } catch {
    return refuse("the image name is not valid");
  }
  if (!isAllowedImage(image, policy)) return refuse(`image ${image} is not a backend image`);
  return { ok: true, operation: { ...operation, image } };
}

/** dockerode sends `fromImage=<repo>&tag=<tag>`; an empty tag would make the engine pull every tag. */
function imagePull(operation: Operation, policy: EnginePolicy): Parsed {
  const from = operation.query.get("fromImage") ?? "";
  const tag = operation.query.get("tag") ?? "";
  const image = tag ? `${from}${tag.startsWith("sha256:") ? "@" : ":"}${tag}` : from;
  const [repository, reference] = splitReference(image);
  if (!reference) return refuse("a pull needs a tag or digest (an empty tag pulls every tag)");
  if (!isAllowedImage(image, policy)) return refuse(`image ${image} is not a backend image`);
  // The engine takes a digest in `tag` too.
  const query = new URLSearchParams({ fromImage: repository, tag: reference });
  return { ok: true, operation: { ...operation, image, query } };
}

/** `repo:tag` or `repo@digest` into its parts; a registry's `host:port` is not a tag. */
function splitReference(image: string): [string, string] {
  const at = image.indexOf("@");
  if (at >= 0) return [image.slice(0, at), image.slice(at + 1)];
  const colon = image.lastIndexOf(":");
  if (colon > image.lastIndexOf("/")) return [image.slice(0, colon), image.slice(colon + 1)];
  return [image, ""];
}

/**
 * A list always carries this deployment's label filter (the engine ANDs label filters, so the
 * caller's own filters can only narrow it); other filter kinds (status, name, id) also narrow.
 * With per-user networks, a container list may ask for the deployment's peers instead (the
 * gateways and the reaper, to connect them to a new backend network): then it carries that label.
 */
function restrictList(operation: Operation, raw: string | null, policy: EnginePolicy): Parsed {
  let filters: unknown = {};
  try {
    if (raw) filters = JSON.parse(raw);
  } catch {
    return refuse("filters is not JSON");
  }
  if (typeof filters !== "object" || filters === null || Array.isArray(filters))
    return refuse("filters is not an object");
  const merged: Record<string, string[]> = {};
  for (const [kind, value] of Object.entries(filters)) {
    // The Engine API takes either ["a=b"] or the older {"a=b": true}.
    const values = Array.isArray(value) ? value : typeof value === "object" && value ? Object.keys(value) : null;
    if (!values?.every((item) => typeof item === "string")) return refuse(`filter ${kind} is not a list of strings`);
    merged[kind] = values as string[];
  }
  const peers = `${PEER_LABEL}=${policy.deployment}`;
  const forPeers = operation.name === "list" && policy.network === PER_USER_NETWORK && merged.label?.includes(peers);
  const required = forPeers ? [peers] : brokerLabelFilter(policy.deployment);
  merged.label = [...new Set([...(merged.label ?? []), ...required])];
  operation.query.set("filters", JSON.stringify(merged));
  return { ok: true, operation };
}
