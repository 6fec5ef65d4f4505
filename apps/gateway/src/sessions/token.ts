import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { decodeEssentials, encodeEssentials, type InitializeEssentials } from "./essentials.js";

/**
 * The broker's own MCP session ids: signed, self-describing tokens (docs/architecture.md#sessions).
 * Redis is the cache of sessions, the token is the record: a token carries what any
 * replica needs to rebuild its session (user binding, nonce, issue time, the client's
 * `initialize` essentials) after Redis lost the mapping or the reaper released it.
 *
 *   mcpb1.<binding>.<nonce>.<issuedAt>.<essentials>.<tag>
 *
 * - binding: the first 16 hex chars of the user id, so a token names its owner without a lookup;
 *   the tag covers the *full* user id, which therefore need not travel in the token.
 * - nonce: 128 random bits, base64url; Redis keys the live upstream mapping by it.
 * - issuedAt: seconds since the epoch, decimal; the token's max age counts from it.
 * - essentials: `e` + base64url(deflateRaw(JSON)) of protocolVersion, capabilities, clientInfo,
 *   or `r` alone when they were too large to carry: then they live only in Redis.
 * - tag: HMAC-SHA256 under the first SESSION_SECRET, base64url, over the user id and all the rest.
 *
 * Every part is base64url, hex, digits or a letter, joined by `.`: visible ASCII only, as the MCP
 * transport requires of session ids ("MUST only contain visible ASCII characters (ranging from
 * 0x21 to 0x7E)", MCP 2025-06-18 basic/transports, Session Management).
 */

export const TOKEN_VERSION = "mcpb1";
/** Hard cap checked before any parsing: a longer header is refused without further work. */
export const MAX_TOKEN_LENGTH = 4096;
/** Default bound on the encoded essentials; larger ones stay in Redis only. */
export const DEFAULT_ESSENTIALS_LIMIT = 2048;
const BINDING_LENGTH = 16;
const NONCE_BYTES = 16;
const MIN_SECRET_LENGTH = 16;
/** Everything but the essentials: version, binding, nonce, issuedAt, flag, tag and separators. */
const FIXED_PARTS_LENGTH = 128;
/** Replicas' clocks drift; a token "from the future" beyond this was not minted by a sane replica. */
const CLOCK_SKEW_SECONDS = 300;
/**
 * The whole grammar, strictly, led by TOKEN_VERSION: one canonical spelling per token (no
 * padding, no leading zeros), visible ASCII only. No nested quantifiers, so matching is linear
 * in the (capped) length.
 */
const TOKEN =
  /^mcpb1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{22})\.(0|[1-9][0-9]{0,10})\.(r|e[A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/;
const USER_ID = /^[0-9a-f]{16,}$/;

export interface MintOptions {
  /** SESSION_SECRET, newest first: tokens are signed with the first. */
  secrets: readonly string[];
  /** Largest encoded essentials carried in the token (default 2 KiB). */
  essentialsLimit?: number;
  /** Milliseconds since the epoch, as `Date.now()`. */
  now?: number;
}

export interface VerifyOptions {
  /** SESSION_SECRET, any order: a token signed with any of them verifies (rotation). */
  secrets: readonly string[];
  maxAgeSeconds: number;
  /** Milliseconds since the epoch, as `Date.now()`. */
  now?: number;
}

export interface MintedToken {
  token: string;
  nonce: string;
  /** Seconds since the epoch. */
  issuedAt: number;
  /** False when the essentials were too large (or absent) and must be kept in Redis instead. */
  carriesEssentials: boolean;
}

export interface VerifiedToken {
  valid: true;
  nonce: string;
  /** Seconds since the epoch. */
  issuedAt: number;
  /**
   * `null` when the token was minted without them: they are in Redis only. Decoded on first
   * read, which only a revival makes: inflating them costs more than the tag check, and the hot
   * path never needs them.
   */
  readonly essentials: InitializeEssentials | null;
}

/** Why a token was refused: for logs and metrics only; callers answer 404 to all of them alike. */
export type InvalidReason = "malformed" | "too-long" | "foreign-user" | "bad-tag" | "expired" | "issued-in-future";

export interface InvalidToken {
  valid: false;
  reason: InvalidReason;
}

export type VerifyResult = VerifiedToken | InvalidToken;

/** Issues a new session id for `userId`, carrying `essentials` when they fit (null: none to carry). */
export function mintSessionToken(userId: string, essentials: InitializeEssentials | null, options: MintOptions) {
  const signer = signingSecret(options.secrets);
  if (!USER_ID.test(userId)) throw new TypeError("userId must be a lowercase hex digest");
  const limit = options.essentialsLimit ?? DEFAULT_ESSENTIALS_LIMIT;
  assertEssentialsLimit(limit);
  const nonce = randomBytes(NONCE_BYTES).toString("base64url");
  const issuedAt = Math.floor((options.now ?? Date.now()) / 1000);
  const encoded = essentials ? encodeEssentials(essentials) : null;
  const carried = encoded !== null && encoded.length <= limit ? `e${encoded}` : "r";
  const body = [TOKEN_VERSION, userId.slice(0, BINDING_LENGTH), nonce, String(issuedAt), carried].join(".");
  return { token: `${body}.${tagOf(signer, userId, body)}`, nonce, issuedAt, carriesEssentials: carried !== "r" };
}

/**
 * Checks a client's session id against the authenticated user. Every failure is the same
 * `{ valid: false }` to the caller, which answers 404 for all, so ids cannot be probed; `reason`
 * is for logs and metrics. The length cap comes before any parsing, the tag before anything is
 * decoded (expiry, essentials: the latter only when read), and the tag comparison is constant-time.
 */
export function verifySessionToken(token: string, userId: string, options: VerifyOptions): VerifyResult {
  signingSecret(options.secrets);
  if (typeof token !== "string" || token.length === 0) return invalid("malformed");
  if (token.length > MAX_TOKEN_LENGTH) return invalid("too-long");
  const parts = parseToken(token);
  if (!parts) return invalid("malformed");
  const { binding, nonce, issuedAt, carried, tag, body } = parts;
  // The binding is no secret (it is in the client's own token); the tag below is the real check.
  if (binding !== userId.slice(0, BINDING_LENGTH)) return invalid("foreign-user");
  if (!tagMatches(options.secrets, userId, body, tag)) return invalid("bad-tag");

  const tooOld = ageRefusal(issuedAt, options);
  return tooOld ? invalid(tooOld) : verified(nonce, issuedAt, carried);
}

/** The token's age against the max age and the clocks' skew: what must be checked on every use. */
function ageRefusal(issuedAt: number, options: Pick<VerifyOptions, "maxAgeSeconds" | "now">): InvalidReason | null {
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (now - issuedAt > options.maxAgeSeconds) return "expired";
  if (issuedAt - now > CLOCK_SKEW_SECONDS) return "issued-in-future";
  return null;
}

function verified(nonce: string, issuedAt: number, carried: string): VerifiedToken {
  let essentials: InitializeEssentials | null | undefined;
  const token = { valid: true as const, nonce, issuedAt };
  // Enumerable, so the verdict reads (and compares) like a plain object.
  return Object.defineProperty(token, "essentials", {
    enumerable: true,
    get: () => {
      // A tag that verifies over essentials that do not decode can only be this broker's bug:
      // the revival then falls back to the record in Redis, or to the broker's defaults.
      if (essentials === undefined) essentials = carried === "r" ? null : decodeEssentials(carried.slice(1));
      return essentials;
    },
  }) as VerifiedToken;
}

/** Tokens remembered as verified, at most; cleared whole when full (as the user id cache is). */
const MAX_REMEMBERED = 10_000;

/** Holds the secrets and limits from the gateway's config, so call sites pass only the request's parts. */
export class SessionTokens {
  private readonly secrets: readonly string[];
  private readonly maxAgeSeconds: number;
  private readonly essentialsLimit: number;
  /**
   * Tokens whose tag verified, by their text, with the user they verified for: the tag check
   * (an HMAC-SHA256, about 7 µs) is made once per token per replica, not per request. The tag
   * is a function of the text, the user id and the secrets, none of which changes while the
   * process runs, so a remembered verdict stays true; the age is checked again on every use.
   */
  readonly #verified = new Map<string, { userId: string; token: VerifiedToken }>();

  constructor(options: { secrets: readonly string[]; maxAgeSeconds: number; essentialsLimit?: number }) {
    signingSecret(options.secrets);
    if (!(options.maxAgeSeconds > 0)) throw new RangeError("maxAgeSeconds must be positive");
    this.essentialsLimit = options.essentialsLimit ?? DEFAULT_ESSENTIALS_LIMIT;
    assertEssentialsLimit(this.essentialsLimit);
    this.secrets = Object.freeze([...options.secrets]);
    this.maxAgeSeconds = options.maxAgeSeconds;
  }

  mint(userId: string, essentials: InitializeEssentials | null, now?: number): MintedToken {
    return mintSessionToken(userId, essentials, this.withNow({ essentialsLimit: this.essentialsLimit }, now));
  }

  verify(token: string, userId: string, now?: number): VerifyResult {
    const options = this.withNow({ maxAgeSeconds: this.maxAgeSeconds }, now);
    const known = this.#verified.get(token);
    if (known?.userId === userId) {
      const tooOld = ageRefusal(known.token.issuedAt, options);
      return tooOld ? invalid(tooOld) : known.token;
    }
    const result = verifySessionToken(token, userId, options);
    if (result.valid) {
      if (this.#verified.size >= MAX_REMEMBERED) this.#verified.clear();
      this.#verified.set(token, { userId, token: result });
    }
    return result;
  }

  /** When a token issued at `issuedAt` (seconds) stops verifying, in milliseconds since the epoch. */
  expiresAt(issuedAt: number): number {
    return (issuedAt + this.maxAgeSeconds) * 1000;
  }

  private withNow<T extends object>(options: T, now: number | undefined): T & { secrets: readonly string[] } {
    return now === undefined ? { ...options, secrets: this.secrets } : { ...options, secrets: this.secrets, now };
  }
}

interface TokenParts {
  binding: string;
  nonce: string;
  issuedAt: number;
  /** `r`, or `e` + the encoded essentials. */
  carried: string;
  tag: string;
  /** Everything the tag is computed over: the token up to its last `.`. */
  body: string;
}

function parseToken(token: string): TokenParts | null {
  const match = TOKEN.exec(token);
  if (!match) return null;
  // Every group is mandatory in TOKEN; the defaults only satisfy noUncheckedIndexedAccess.
  const [, binding = "", nonce = "", issuedAt = "", carried = "", tag = ""] = match;
  return { binding, nonce, issuedAt: Number(issuedAt), carried, tag, body: token.slice(0, -tag.length - 1) };
}

/**
 * The MAC input names the format and the full user id, length-prefixed, then the token body, so
 * no other user's id and no other field layout yields the same bytes.
 */
function tagOf(secret: string, userId: string, body: string): string {
  return createHmac("sha256", secret)
    .update(`${TOKEN_VERSION}\n${userId.length}:${userId}\n${body}`)
    .digest("base64url");
}

/**
 * Compares the expected tag's text with the presented text rather than decoding the latter:
 * base64url decoding is lenient, so two texts can decode to the same bytes. Every secret is
 * tried, whichever matches, so the time does not depend on which one signed.
 */
function tagMatches(secrets: readonly string[], userId: string, body: string, tag: string): boolean {
  const presented = Buffer.from(tag, "ascii");
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(tagOf(secret, userId, body), "ascii");
    // Both are 43 characters (the grammar checked the presented one), as timingSafeEqual requires.
    if (timingSafeEqual(expected, presented)) matched = true;
  }
  return matched;
}

function invalid(reason: InvalidReason): InvalidToken {
  return { valid: false, reason };
}

/** Checks the list and returns the secret new tokens are signed with: the first. */
function signingSecret(secrets: readonly string[]): string {
  const [first] = secrets;
  if (first === undefined) throw new RangeError("SESSION_SECRET needs at least one secret");
  if (secrets.some((secret) => secret.length < MIN_SECRET_LENGTH)) {
    throw new RangeError(`every SESSION_SECRET must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  return first;
}

function assertEssentialsLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 0 || limit + FIXED_PARTS_LENGTH > MAX_TOKEN_LENGTH) {
    throw new RangeError(`essentialsLimit must be an integer from 0 to ${MAX_TOKEN_LENGTH - FIXED_PARTS_LENGTH}`);
  }
}
