import type { Redis } from "ioredis";
import { guard } from "./guard.js";
import type { Keyspace } from "./keys.js";

/**
 * Which MCP era a backend image speaks, learned once from an `initialize` and shared by every
 * replica: `modern` (MCP 2026-07-28, no sessions: its requests pass through untouched) or
 * `legacy` (sessions; the broker answers `server/discover` from `initialize`'s result, kept here).
 */
export interface BackendEra {
  era: "legacy" | "modern";
  /** The `initialize` result (`capabilities`, `serverInfo`, `instructions`) of a legacy backend. */
  initializeResult?: Record<string, unknown> | undefined;
}

/** Per backend image, for a while: an image's tag can be moved to a new release. */
export class BackendEras {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  async get(image: string): Promise<BackendEra | null> {
    const value = await guard(() => this.redis.get(this.keys.backendEra(image)));
    if (value === null) return null;
    try {
      return JSON.parse(value) as BackendEra;
    } catch {
      return null; // not ours: learned again
    }
  }

  async set(image: string, era: BackendEra, ttlSeconds: number): Promise<void> {
    await guard(() => this.redis.set(this.keys.backendEra(image), JSON.stringify(era), "EX", ttlSeconds));
  }
}
