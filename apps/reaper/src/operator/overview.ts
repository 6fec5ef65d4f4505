import { type ContainerDriver, isSpareUserId, type ManagedContainer } from "@mcp-broker/container-manager";
import { CodedError } from "@mcp-broker/service-runtime";
import type { BrokerSession, EventCounts, Route, SessionStore } from "@mcp-broker/session-store";
import type { Queue } from "bullmq";
import type { SweepResult } from "../sweep.js";

/** Where the operator view and the `mcp-broker` CLI read from: the same three sources. */
export interface OperatorSources {
  store: SessionStore;
  driver: ContainerDriver;
  /** The reaper's queue, for the last sweeps; absent: no sweeps shown. */
  queue?: Queue;
}

/** One user with a routed MCP server. */
export interface ServerRow {
  userId: string;
  containerId: string;
  /** The engine's view: true running, false stopped, null not listed (gone, or another engine). */
  running: boolean | null;
  state: Route["state"];
  /** When the engine created the server, else when the route was recorded. */
  createdAt: number;
  lastUsedAt: number;
  idleMs: number;
  sessions: number;
  coldStartMs: number | null;
  /** The server was a spare of the warm pool that this user claimed. */
  fromPool: boolean;
}

/** The warm pool: ready keyless spares, oldest (claimed next) first, and starts in flight. */
export interface PoolView {
  spares: Array<{ containerId: string; running: boolean | null; createdAt: number; ageMs: number }>;
  starting: number;
}

export interface SweepRow {
  id: string;
  finishedAt: number | null;
  durationMs: number | null;
  result: SweepResult | null;
  failedReason: string | null;
}

export interface Overview {
  at: number;
  servers: ServerRow[];
  pool: PoolView;
  sweeps: SweepRow[];
  /** Recoveries, revivals and refused replays over the last hour, by event name. */
  lastHour: EventCounts;
}

/** Shown user ids: as many hex digits as the logs print. */
export const shortUser = (userId: string) => userId.slice(0, 12);

/** Every user with a route, joined with the engine's listing and the sessions index. */
export async function listServers(sources: OperatorSources, now = Date.now()): Promise<ServerRow[]> {
  const { store, driver } = sources;
  const [managed, sessionCounts] = await Promise.all([driver.listManaged(), store.sessionCountsByUser()]);
  const byId = new Map<string, ManagedContainer>(managed.map((container) => [container.id, container]));
  const rows: ServerRow[] = [];
  for await (const page of store.routeUserIds()) {
    const routes = await Promise.all(page.map((userId) => store.getRoute(userId)));
    for (const route of routes) {
      if (!route) continue; // dropped between the index page and the read
      const container = byId.get(route.containerId);
      rows.push({
        userId: route.userId,
        containerId: route.containerId,
        running: container ? container.running : null,
        state: route.state,
        createdAt: container?.createdAt ?? route.createdAt,
        lastUsedAt: route.lastUsedAt,
        idleMs: Math.max(0, now - route.lastUsedAt),
        sessions: sessionCounts.get(route.userId) ?? 0,
        coldStartMs: route.coldStartMs ?? null,
        fromPool: container ? isSpareUserId(container.userId) : false,
      });
    }
  }
  return rows.sort((a, b) => a.idleMs - b.idleMs || a.userId.localeCompare(b.userId));
}

/** The warm pool as Redis holds it, joined with the engine's listing. */
export async function listPool(sources: OperatorSources, now = Date.now()): Promise<PoolView> {
  const [spares, starting, managed] = await Promise.all([
    sources.store.warmPool.list(),
    sources.store.warmPool.starting(),
    sources.driver.listManaged(),
  ]);
  const running = new Map(managed.map((container) => [container.id, container.running]));
  return {
    spares: spares.map((spare) => ({
      containerId: spare.containerId,
      running: running.get(spare.containerId) ?? null,
      createdAt: spare.createdAt,
      ageMs: Math.max(0, now - spare.createdAt),
    })),
    starting,
  };
}

/** The last `count` sweeps BullMQ kept (completed and failed), newest first. */
export async function lastSweeps(queue: Queue, count = 10): Promise<SweepRow[]> {
  const jobs = await queue.getJobs(["completed", "failed"], 0, count - 1, false);
  return jobs
    .map((job) => ({
      id: String(job.id),
      finishedAt: job.finishedOn ?? null,
      durationMs: job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : null,
      result: (job.returnvalue as SweepResult | null) ?? null,
      failedReason: job.failedReason || null,
    }))
    .sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0))
    .slice(0, count);
}

export async function gatherOverview(sources: OperatorSources, now = Date.now()): Promise<Overview> {
  const [servers, pool, sweeps, lastHour] = await Promise.all([
    listServers(sources, now),
    listPool(sources, now),
    sources.queue ? lastSweeps(sources.queue) : Promise.resolve([]),
    sources.store.eventsSince(60, now),
  ]);
  return { at: now, servers, pool, sweeps, lastHour };
}

/** The one routed user whose id starts with `prefix`; an unknown or ambiguous prefix is an error. */
export async function findUser(store: SessionStore, prefix: string): Promise<string> {
  const wanted = prefix.toLowerCase();
  if (!/^[0-9a-f]{4,}$/.test(wanted))
    throw new OperatorError("BAD_PREFIX", "at least 4 hex digits of a user id, please");
  const matches: string[] = [];
  for await (const page of store.routeUserIds()) matches.push(...page.filter((id) => id.startsWith(wanted)));
  if (matches.length === 0) throw new OperatorError("NO_SUCH_USER", `no user with a server matches ${prefix}`);
  if (matches.length > 1)
    throw new OperatorError("AMBIGUOUS_PREFIX", `${prefix} matches ${matches.length} users; give more digits`);
  return matches[0] as string;
}

export async function sessionsOf(store: SessionStore, prefix: string): Promise<BrokerSession[]> {
  return store.sessionsOfUser(await findUser(store, prefix));
}

/** The lock is held only while the engine removes one server. */
const STOP_LOCK = { ttlMs: 60_000, timeoutMs: 15_000 };

/**
 * Stops one user's server: under the user's lock (so no gateway starts or recovers it meanwhile)
 * removes the container, then drops the route. The user's next call finds no route and starts a
 * new server; their sessions are revived on it (docs/architecture.md#recovery-and-replay).
 */
export async function stopServer(sources: OperatorSources, prefix: string): Promise<Route> {
  const userId = await findUser(sources.store, prefix);
  return sources.store.withUserLock(userId, STOP_LOCK, async () => {
    const route = await sources.store.getRoute(userId);
    if (!route) throw new OperatorError("NO_SUCH_USER", `user ${shortUser(userId)} has no server any more`);
    await sources.driver.remove(route.containerId);
    await sources.store.deleteRoute(userId, route.containerId);
    return route;
  });
}

/** A request the operator can fix (unknown prefix, ambiguous prefix): shown, not logged as a fault. */
export class OperatorError extends CodedError<"BAD_PREFIX" | "NO_SUCH_USER" | "AMBIGUOUS_PREFIX"> {}
