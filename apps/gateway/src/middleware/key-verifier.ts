import { inClientSpan, inSpan } from "@mcp-broker/service-runtime";
import type { SessionStore } from "@mcp-broker/session-store";
import { request } from "undici";
import type { GatewayConfig } from "../config.js";
import type { User } from "../env.js";
import { GatewayError } from "../errors.js";

export type VerifierConfig = Pick<
  GatewayConfig,
  "AUTH_VERIFY" | "AUTH_VERIFY_URL" | "VERIFY_PER_IP_PER_MINUTE" | "SESSION_CACHE_MS"
>;

/** Asks the upstream service (Outline `POST /api/auth.info`) whether the key is valid. */
async function verifyUpstream(url: string, key: string): Promise<boolean> {
  try {
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "application/json" };
    const response = await inClientSpan("POST auth.info", { method: "POST", url, headers }, (sent) =>
      request(url, { method: "POST", headers: sent, body: "{}", headersTimeout: 5000, bodyTimeout: 5000 }),
    );
    await response.body.dump();
    if (response.statusCode >= 200 && response.statusCode < 300) return true;
    if (response.statusCode === 401 || response.statusCode === 403) return false;
    throw new Error(`status ${response.statusCode}`);
  } catch (error) {
    // The reason names a status or a connection failure, never the key.
    const reason = error instanceof Error && /^status \d+$/.test(error.message) ? error.message : "unreachable";
    throw new GatewayError("AUTH_UNAVAILABLE", reason, { cause: error });
  }
}

/**
 * Key verification: the cached verdict, else one upstream call per key at a time on this
 * replica (concurrent requests with the same new key share it), behind a per-IP budget so
 * random keys cannot flood the upstream service.
 */
export class KeyVerifier {
  readonly #inFlight = new Map<string, Promise<boolean>>();
  /**
   * Keys found valid lately, by user id → until when (ms): the hot path's one Redis round trip
   * must not be spent on a verdict Redis caches for minutes anyway (docs/architecture.md#hot-path).
   * Trusted as long as the session cache (SESSION_CACHE_MS); a rejection is never remembered here.
   */
  readonly #valid = new Map<string, number>();

  constructor(
    private readonly config: VerifierConfig,
    private readonly store: SessionStore,
  ) {}

  /** Throws UNAUTHORIZED_REJECTED, VERIFY_LIMITED or AUTH_UNAVAILABLE; returns when the key is good. */
  async check(user: User): Promise<void> {
    const url = this.config.AUTH_VERIFY_URL;
    if (this.config.AUTH_VERIFY === "off" || !url) return;
    const now = Date.now();
    if ((this.#valid.get(user.id) ?? 0) > now) return;
    await inSpan("verify key", async (span) => {
      const cached = await this.store.getAuthVerdict(user.id);
      span?.setAttribute("mcpb.auth.cached", cached !== null);
      const valid = cached ?? (await this.#verifyOnce(user, url));
      if (!valid) throw new GatewayError("UNAUTHORIZED_REJECTED");
    });
    if (this.config.SESSION_CACHE_MS > 0) {
      if (this.#valid.size >= 10_000) this.#valid.clear();
      this.#valid.set(user.id, now + this.config.SESSION_CACHE_MS);
    }
  }

  /** Single flight: the first request of a key verifies it; the others wait for its verdict. */
  #verifyOnce(user: User, url: string): Promise<boolean> {
    const running = this.#inFlight.get(user.id);
    if (running) return running;
    const verdict = this.#verify(user, url).finally(() => this.#inFlight.delete(user.id));
    this.#inFlight.set(user.id, verdict);
    return verdict;
  }

  async #verify(user: User, url: string): Promise<boolean> {
    const budget = await this.store.consumeIpLimit("verify", user.ip, this.config.VERIFY_PER_IP_PER_MINUTE);
    if (!budget.allowed)
      throw new GatewayError("VERIFY_LIMITED", String(Math.max(1, Math.ceil(budget.retryAfterMs / 1000))));
    const valid = await verifyUpstream(url, user.key);
    await this.store.setAuthVerdict(user.id, valid);
    return valid;
  }

  /** Upstream calls in flight (tests: concurrent verifications of one key are one call). */
  get inFlight(): number {
    return this.#inFlight.size;
  }
}
