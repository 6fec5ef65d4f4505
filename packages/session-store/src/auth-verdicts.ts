import type { Redis } from "ioredis";
import { guard } from "./guard.js";
import type { Keyspace } from "./keys.js";

export interface AuthVerdictTtls {
  /** How long a key the upstream accepted is trusted before it is verified again. */
  positiveSeconds: number;
  /** How long a key the upstream rejected is refused before it is verified again. */
  negativeSeconds: number;
}

/** The cached verdicts of verifying users' keys upstream, shared by every gateway replica. */
export class AuthVerdicts {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly ttls: AuthVerdictTtls,
  ) {}

  /** The cached verdict: true, false, or null (unknown). */
  async get(userId: string): Promise<boolean | null> {
    const value = await guard(() => this.redis.get(this.keys.auth(userId)));
    return value === null ? null : value === "1";
  }

  async set(userId: string, valid: boolean): Promise<void> {
    const ttl = valid ? this.ttls.positiveSeconds : this.ttls.negativeSeconds;
    await guard(() => this.redis.set(this.keys.auth(userId), valid ? "1" : "0", "EX", ttl));
  }
}
