import {
  type ContainerDriver,
  endMcpSession,
  isSpareUserId,
  type ManagedContainer,
} from "@mcp-broker/container-manager";
import type { ClaimedSession, Route, SessionStore, UnroutedMark } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import type { ReaperConfig } from "./config.js";

export type SweepConfig = Pick<
  ReaperConfig,
  | "SESSION_IDLE_TTL_SECONDS"
  | "CONTAINER_IDLE_TTL_SECONDS"
  | "REAP_BATCH_SIZE"
  | "REAP_MAX_BATCHES"
  | "ORPHAN_GRACE_SECONDS"
>;

export interface SweepDeps {
  config: SweepConfig;
  store: SessionStore;
  driver: ContainerDriver;
  log: Logger;
}

/** What one sweep did: the job's return value, shown on the dashboard. */
export interface SweepResult {
  sessionsEnded: number;
  upstreamDeletesFailed: number;
  containersStopped: number;
  orphansRemoved: number;
  staleRoutesRemoved: number;
  /** Per-user backend networks whose backend was gone (DockerDriver `per-user`). */
  networksRemoved: number;
  /** Spares of the warm pool whose container is gone or stopped, dropped from the pool. */
  sparesDropped: number;
  /** Containers that refused to stop: given back to the idle index, retried next sweep. */
  failures: Array<{ containerId: string; user: string; reason: string }>;
  /** True when a limit of batches was reached and more work waits for the next sweep. */
  truncated: boolean;
  durationMs: number;
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(runners);
}

/**
 * One reaper pass (docs/architecture.md#reaper). Every claim is atomic in Redis, so a request that
 * touches a session or route before the claim keeps it, and one that arrives after finds it
 * gone and re-creates it; routes are claimed under the user's lock, so no gateway starts or
 * recovers that user's server while its container is being removed.
 */
export async function sweep(deps: SweepDeps, now = Date.now()): Promise<SweepResult> {
  const started = performance.now();
  const result: SweepResult = {
    sessionsEnded: 0,
    upstreamDeletesFailed: 0,
    containersStopped: 0,
    orphansRemoved: 0,
    staleRoutesRemoved: 0,
    networksRemoved: 0,
    sparesDropped: 0,
    failures: [],
    truncated: false,
    durationMs: 0,
  };
  await endIdleSessions(deps, now, result);
  await stopIdleContainers(deps, now, result);
  await removeOrphansAndStaleRoutes(deps, now, result);
  // After the containers: a network is left once its backend is gone; young ones may be in use by a start.
  result.networksRemoved = (await deps.driver.pruneNetworks?.(deps.config.ORPHAN_GRACE_SECONDS * 1000)) ?? 0;
  result.durationMs = Math.round(performance.now() - started);
  return result;
}

async function endIdleSessions({ config, store, log }: SweepDeps, now: number, result: SweepResult) {
  const cutoff = now - config.SESSION_IDLE_TTL_SECONDS * 1000;
  for (let batch = 0; batch < config.REAP_MAX_BATCHES; batch++) {
    // Released, not ended: a client's session keeps a record its token revives (docs/architecture.md#sessions).
    const claimed = await store.claimExpiredSessions(cutoff, config.REAP_BATCH_SIZE);
    result.sessionsEnded += claimed.length;
    // One route lookup per user in the batch, however many of their sessions expired.
    const routes = new Map<string, Promise<Route | null>>();
    const routeOf = (userId: string) => {
      if (!routes.has(userId)) routes.set(userId, store.getRoute(userId));
      return routes.get(userId) as Promise<Route | null>;
    };
    await eachLimited(claimed, 16, async (session) => {
      if (!(await endUpstream(await routeOf(session.userId), session))) result.upstreamDeletesFailed++;
    });
    if (claimed.length < config.REAP_BATCH_SIZE) return;
  }
  result.truncated = true;
  log.warn({ limit: config.REAP_MAX_BATCHES * config.REAP_BATCH_SIZE }, "more idle sessions than one sweep ends");
}

/** Best effort: the upstream server frees the session now rather than at its own timeout. */
async function endUpstream(route: Route | null, session: ClaimedSession): Promise<boolean> {
  if (!session.upstreamSessionId) return true;
  if (route?.state !== "ready") return true; // its server is gone or going: nothing to end
  try {
    const headers = session.protocolVersion ? { "mcp-protocol-version": session.protocolVersion } : {};
    const status = await endMcpSession({ url: route.endpoint, headers, timeoutMs: 5000 }, session.upstreamSessionId);
    // 404: the server had already forgotten it; 405: the server does not support DELETE.
    return (status >= 200 && status < 300) || status === 404 || status === 405;
  } catch {
    return false;
  }
}

async function stopIdleContainers({ config, store, driver, log }: SweepDeps, now: number, result: SweepResult) {
  const cutoff = now - config.CONTAINER_IDLE_TTL_SECONDS * 1000;
  for (let batch = 0; batch < config.REAP_MAX_BATCHES; batch++) {
    const claims = await store.claimIdleRoutes(cutoff, config.REAP_BATCH_SIZE, 120_000);
    await eachLimited(claims, 8, async (claim) => {
      try {
        await driver.remove(claim.containerId);
        await store.finishRouteRemoval(claim);
        result.containersStopped++;
        log.info(
          { user: claim.userId.slice(0, 12), container: claim.containerId.slice(0, 12) },
          "idle container removed",
        );
      } catch (error) {
        await store.abandonRouteRemoval(claim);
        const reason = (error as Error).message;
        result.failures.push({ containerId: claim.containerId, user: claim.userId.slice(0, 12), reason });
        log.warn(
          { container: claim.containerId.slice(0, 12), err: reason },
          "idle container refused to stop; will retry",
        );
      }
    });
    if (claims.length < config.REAP_BATCH_SIZE) return;
  }
  result.truncated = true;
}

/**
 * An unrouted container is an orphan once two sweeps saw it so (a route written just after one
 * sweep's look is not a loss) and either the engine says it is not running (it serves nothing)
 * or nothing re-adopted it for a whole container idle limit: a request for its user re-adopts
 * it by its deterministic name, so one still unclaimed that long is idle by the same rule as a
 * routed one, and a call in flight when Redis lost its route keeps its server that long.
 */
function isOrphan(mark: UnroutedMark | null, container: ManagedContainer, now: number, config: SweepConfig): boolean {
  if (!mark || mark.sweeps < 2) return false;
  return !container.running || now - mark.firstSeenAt >= config.CONTAINER_IDLE_TTL_SECONDS * 1000;
}

async function removeOrphansAndStaleRoutes(
  { config, store, driver, log }: SweepDeps,
  now: number,
  result: SweepResult,
) {
  const managed = await driver.listManaged();
  const byId = new Set(managed.map((container) => container.id));
  const pooled = await dropDeadSpares({ store, driver, log }, managed, result);

  // Containers Redis does not route to: left behind by a crash between start and route write,
  // or by a Redis that lost its data while they serve calls (docs/architecture.md#reaper).
  // Young ones may be starting right now, and a held lock means a gateway is working on that
  // user: both are left alone. One sighting proves nothing, so each is marked and judged below.
  for (const container of managed) {
    if (pooled.has(container.id)) continue; // a ready spare: no route until a user claims it
    if (now - container.createdAt < config.ORPHAN_GRACE_SECONDS * 1000) continue;
    const userId = await userOf(store, container);
    const mark = await store.markUnrouted(userId, container.id, now);
    if (!isOrphan(mark, container, now, config)) continue;
    await store.withUserLockIfFree(userId, 60_000, async () => {
      if ((await store.getRoute(userId))?.containerId === container.id) return;
      await driver.remove(container.id);
      result.orphansRemoved++;
      log.info(
        { container: container.id.slice(0, 12), unroutedSince: mark?.firstSeenAt },
        "orphaned container removed",
      );
    });
  }
  await store.pruneUnrouted(managed.map((container) => container.id));
  await store.warmPool.pruneOwners(managed.map((container) => container.id));

  // Routes whose container is gone (removed by hand, engine reset): confirm, then drop.
  for await (const users of store.routeUserIds(config.REAP_BATCH_SIZE)) {
    for (const userId of users) {
      const route = await store.getRoute(userId);
      if (!route || byId.has(route.containerId)) continue;
      if (await driver.inspect(route.containerId)) continue; // created after the listing
      if (await store.deleteRoute(userId, route.containerId)) {
        result.staleRoutesRemoved++;
        log.info({ user: userId.slice(0, 12) }, "stale route removed");
      }
    }
  }
}

/**
 * The user a container serves: its label, or for a claimed spare of the warm pool (labelled as
 * the spare) the binding the claim wrote. A spare neither pooled nor claimed keeps its own id:
 * no route names it, so the orphan rule applies (a start that died before pooling).
 */
async function userOf(store: SessionStore, container: ManagedContainer): Promise<string> {
  if (!isSpareUserId(container.userId)) return container.userId;
  return (await store.warmPool.owner(container.id)) ?? container.userId;
}

/**
 * Pool entries whose container is gone or stopped are dropped (and the stopped one removed), so
 * no user claims a dead spare. Nothing is ever added back: the pool only grows by fresh starts.
 * Returns the ids of the spares left in the pool.
 */
async function dropDeadSpares(
  { store, driver, log }: Pick<SweepDeps, "store" | "driver" | "log">,
  managed: readonly ManagedContainer[],
  result: SweepResult,
): Promise<Set<string>> {
  const running = new Map(managed.map((container) => [container.id, container.running]));
  const pooled = new Set<string>();
  for (const spare of await store.warmPool.list()) {
    const listed = running.get(spare.containerId);
    // Listed running: alive. Not listed: maybe started after the listing, so asked once more.
    const alive = listed ?? (await driver.inspect(spare.containerId))?.running ?? false;
    if (alive) {
      pooled.add(spare.containerId);
      continue;
    }
    if (await store.warmPool.drop(spare.containerId)) {
      await driver.remove(spare.containerId);
      result.sparesDropped++;
      log.info({ container: spare.containerId.slice(0, 12) }, "dead spare dropped from the warm pool");
    }
  }
  return pooled;
}
