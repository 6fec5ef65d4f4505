import type { Redis } from "ioredis";
import { guard, guardExec } from "./guard.js";
import { sessionFrom } from "./hashes.js";
import type { Keyspace } from "./keys.js";
import type { StoreScripts } from "./scripts.js";
import { validSessionId } from "./sessions.js";
import type { BrokerSession } from "./types.js";

/** Most resource subscriptions kept per session for replay: a bound on what one client can store. */
export const MAX_SUBSCRIPTIONS = 64;
/** Longest URI recorded; a longer one is not replayed after a revival. */
export const MAX_SUBSCRIPTION_URI = 2048;

/** What a revival replays on a new upstream session, from the live session or the record the reaper kept. */
export interface SessionRecord {
  /** The `initialize` params stored with the session (null when its token carries them). */
  initializeParams: unknown;
  /** The last `logging/setLevel` level the client sent, if any. */
  logLevel: string | null;
  /** The resources the client subscribes to (`resources/subscribe`), oldest first. */
  subscriptions: string[];
  /** True when the reaper released the mapping for idleness and kept this record. */
  released: boolean;
}

/** A session as the revival path sees it: one round trip, only when the hot path found no mapping. */
export interface SessionLookup {
  /** The live mapping, when there is one (another request may have revived it meanwhile). */
  session: BrokerSession | null;
  record: SessionRecord | null;
  /** The client ended the session (DELETE): its id must never be revived. */
  ended: boolean;
}

export interface Revival {
  /** The upstream id the caller saw on the session; null when the mapping was missing. */
  expectedUpstream: string | null;
  upstreamSessionId: string;
  protocolVersion: string;
  /** When the session's token expires (ms): the record outlives an idle release until then. */
  expiresAt?: number | undefined;
}

export type RevivalOutcome =
  | { outcome: "revived"; upstreamSessionId: string }
  /** Another revival recorded its upstream session first: use that one. */
  | { outcome: "taken"; upstreamSessionId: string }
  /** The client ended the session meanwhile. */
  | { outcome: "ended" };

export type StateChange =
  | { kind: "level"; level: string }
  | { kind: "subscribe"; uri: string }
  | { kind: "unsubscribe"; uri: string };

/**
 * What keeps a client's session revivable (docs/architecture.md#sessions): the lookup the revival
 * path makes (mapping, record, tombstone), the compare-and-set that records a revived mapping,
 * and the state a client set that a new upstream session must be told again.
 */
export class SessionRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
    private readonly keyTtlMs: number,
  ) {}

  async lookup(userId: string, sessionId: string): Promise<SessionLookup> {
    if (!validSessionId(sessionId)) return { session: null, record: null, ended: false };
    const results = await guardExec(
      this.redis
        .pipeline()
        .hgetall(this.keys.session(userId, sessionId))
        .exists(this.keys.tombstone(userId, sessionId)),
    );
    const fields = (results[0]?.[1] ?? {}) as Record<string, string>;
    const ended = results[1]?.[1] === 1;
    return { session: sessionFrom(userId, sessionId, fields), record: recordFrom(fields), ended };
  }

  /** Records a revived mapping, unless the client ended the session or another revival won. */
  async revive(userId: string, sessionId: string, revival: Revival): Promise<RevivalOutcome> {
    if (!validSessionId(sessionId)) return { outcome: "ended" };
    const [outcome, upstream] = await guard(() =>
      this.scripts.reviveSession(
        this.keys.session(userId, sessionId),
        this.keys.tombstone(userId, sessionId),
        this.keys.sessionsIndex,
        revival.expectedUpstream ?? "",
        revival.upstreamSessionId,
        Date.now(),
        this.keyTtlMs,
        this.keys.sessionMember(userId, sessionId),
        revival.protocolVersion,
        revival.expiresAt ?? "",
      ),
    );
    if (outcome === "ended") return { outcome };
    return { outcome: outcome === "taken" ? "taken" : "revived", upstreamSessionId: upstream ?? "" };
  }

  /**
   * Records a level or subscription change on a live session; false when it was not recorded
   * (no live session, the set of subscriptions is full, or the URI is too long to keep).
   */
  async recordState(userId: string, sessionId: string, change: StateChange): Promise<boolean> {
    if (!validSessionId(sessionId)) return false;
    const value = change.kind === "level" ? change.level : change.uri;
    if (value.length === 0 || value.length > MAX_SUBSCRIPTION_URI || /\s/.test(value)) return false;
    const recorded = await guard(() =>
      this.scripts.recordState(this.keys.session(userId, sessionId), change.kind, value, MAX_SUBSCRIPTIONS),
    );
    return recorded === 1;
  }
}

function recordFrom(fields: Record<string, string>): SessionRecord | null {
  if (Object.keys(fields).length === 0) return null;
  return {
    initializeParams: fields.init ? JSON.parse(fields.init) : null,
    logLevel: fields.level ?? null,
    subscriptions: fields.subs ? fields.subs.split("\n") : [],
    released: fields.released === "1",
  };
}
