import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

export const SCHEDULER_ID = "sweep-every-interval";

/** Declares (or re-declares) the job scheduler that adds a `sweep` job every `everyMs`. */
export async function declareSweeps(queue: Queue, everyMs: number): Promise<void> {
  await queue.upsertJobScheduler(
    SCHEDULER_ID,
    { every: everyMs },
    {
      name: "sweep",
      opts: {
        attempts: 5,
        backoff: { type: "exponential", delay: 2000 },
        removeOnComplete: { count: 500 },
        removeOnFail: { count: 1000 },
      },
    },
  );
}

/**
 * Keeps the sweep schedule declared (docs/architecture.md#reaper). BullMQ keeps a job scheduler
 * only in Redis, so a Redis that lost its data (FLUSHALL, a restart without persistence, a
 * failover to an empty replica) loses it and no sweep ever runs again. Upserting it is
 * idempotent (same id and `every`: its pending job is put back at the same time, see bullmq's
 * addJobScheduler-11.lua), so every reaper re-declares it whenever its queue connection becomes
 * ready again and once per interval, which also catches a FLUSHALL that dropped no connection.
 * After a loss a sweep therefore runs within one interval (a new scheduler runs at once).
 * The first declaration is the caller's, at start.
 */
export function keepSweepsScheduled(deps: {
  queue: Queue;
  /** The queue's connection: its `ready` event is a reconnect after the first. */
  connection: Redis;
  everyMs: number;
  logger: Logger;
}): { stop(): void } {
  const { queue, connection, everyMs, logger } = deps;
  let pending = false;
  let stopped = false;

  const redeclare = (reason: "reconnected" | "interval") => {
    // One at a time: while Redis is down, commands wait for the reconnect rather than pile up.
    if (pending) return;
    pending = true;
    (async () => {
      const existed = await queue.getJobScheduler(SCHEDULER_ID);
      await declareSweeps(queue, everyMs);
      if (!existed) logger.warn({ reason }, "sweep schedule was missing (Redis lost its data?); declared it again");
    })()
      .catch((error: Error) => {
        if (stopped) return; // the queue closed under it
        logger.warn({ err: error.message, reason }, "could not re-declare the sweep schedule; will retry");
      })
      .finally(() => {
        pending = false;
      });
  };
  const onReady = () => redeclare("reconnected");
  connection.on("ready", onReady);
  const timer = setInterval(() => redeclare("interval"), everyMs);
  timer.unref();

  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      connection.off("ready", onReady);
    },
  };
}
