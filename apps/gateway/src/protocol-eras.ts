import type { BackendEra, SessionStore } from "@mcp-broker/session-store";

/** MCP 2026-07-28: no sessions, `server/discover`, request metadata headers (docs/architecture.md#protocol-eras). */
export const MODERN_PROTOCOL_VERSION = "2026-07-28";
/** How long a backend image's learned era holds before an `initialize` asks again (a tag can move). */
const ERA_TTL_SECONDS = 6 * 3600;
/** How long a replica trusts the era it read, so a warm bridged request costs one Redis round trip. */
const LOCAL_MS = 60_000;

/** The protocol version an `initialize` result names. */
export const negotiated = (result: Record<string, unknown>) =>
  typeof result.protocolVersion === "string" ? result.protocolVersion : undefined;

/**
 * Which MCP era the backend image speaks, learned from an `initialize` that offered 2026-07-28
 * (a legacy server answers with an older version) and kept in Redis for every replica.
 */
export class ProtocolEras {
  #local: { era: BackendEra; until: number } | null = null;

  constructor(
    private readonly store: SessionStore,
    private readonly image: string,
  ) {}

  /** The image's era: this replica's copy for a minute, else Redis's; null when not learned yet. */
  async known(): Promise<BackendEra | null> {
    if (this.#local && this.#local.until > Date.now()) return this.#local.era;
    const era = await this.store.backendEra(this.image);
    if (era) this.#local = { era, until: Date.now() + LOCAL_MS };
    return era;
  }

  /** Records what an `initialize` that offered 2026-07-28 showed; one that offered less shows nothing. */
  async learn(offered: string, result: Record<string, unknown>): Promise<BackendEra | null> {
    if (offered !== MODERN_PROTOCOL_VERSION) return null;
    const { protocolVersion: _, ...description } = result;
    const era: BackendEra =
      negotiated(result) === MODERN_PROTOCOL_VERSION
        ? { era: "modern" }
        : { era: "legacy", initializeResult: description };
    await this.store.recordBackendEra(this.image, era, ERA_TTL_SECONDS);
    this.#local = { era, until: Date.now() + LOCAL_MS };
    return era;
  }
}
