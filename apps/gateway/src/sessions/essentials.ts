import { deflateRawSync, inflateRawSync } from "node:zlib";

/**
 * What a session token carries of the client's `initialize` (docs/architecture.md#sessions):
 * picked from the params, and encoded as base64url(deflateRaw(JSON)) for the token's
 * essentials part (sessions/token.ts), so any replica can replay it upstream on a revival.
 */

/** The parts of the client's `initialize` params a revive replays upstream. */
export interface InitializeEssentials {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo: { name: string; version: string } & Record<string, unknown>;
}

/** Inflate bound: the tag is checked first, so this only guards against our own bugs. */
const MAX_ESSENTIALS_JSON = 64 * 1024;

/**
 * Picks the essentials from a client's `initialize` params (the rest, e.g. `_meta`, is not
 * replayed), or `null` when the params lack them.
 */
export function pickEssentials(params: unknown): InitializeEssentials | null {
  if (!isRecord(params)) return null;
  const { protocolVersion, capabilities, clientInfo } = params;
  const candidate = { protocolVersion, capabilities, clientInfo };
  return isEssentials(candidate) ? candidate : null;
}

export function encodeEssentials(essentials: InitializeEssentials): string {
  const { protocolVersion, capabilities, clientInfo } = essentials;
  return deflateRawSync(JSON.stringify({ protocolVersion, capabilities, clientInfo })).toString("base64url");
}

export function decodeEssentials(encoded: string): InitializeEssentials | null {
  try {
    const json = inflateRawSync(Buffer.from(encoded, "base64url"), { maxOutputLength: MAX_ESSENTIALS_JSON });
    const value: unknown = JSON.parse(json.toString("utf8"));
    return isEssentials(value) ? value : null;
  } catch {
    // Only reachable for a token this broker signed: a bug; the caller falls back as for `r`.
    return null;
  }
}

function isEssentials(value: unknown): value is InitializeEssentials {
  return (
    isRecord(value) &&
    typeof value.protocolVersion === "string" &&
    isRecord(value.capabilities) &&
    isRecord(value.clientInfo) &&
    typeof value.clientInfo.name === "string" &&
    typeof value.clientInfo.version === "string"
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
