import { createHmac, randomBytes } from "node:crypto";
import { type InitializeEssentials, pickEssentials } from "./essentials.js";
import { MAX_TOKEN_LENGTH, mintSessionToken, SessionTokens, type VerifyResult, verifySessionToken } from "./token.js";

const CURRENT = "current-session-secret-0123456789";
const PREVIOUS = "previous-session-secret-012345678";
const RETIRED = "retired-session-secret-0123456789";
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const MAX_AGE = 30 * 24 * 3600;

/** A user id as the auth middleware makes it: hex HMAC-SHA256 of the API key. */
const userIdOf = (key: string) => createHmac("sha256", "key-hash-secret-for-tests").update(key).digest("hex");
const ALICE = userIdOf("ol_api_alice");
const BOB = userIdOf("ol_api_bob");

/** What Claude Code sends in `initialize`. */
const CLAUDE_CODE: InitializeEssentials = {
  protocolVersion: "2025-06-18",
  capabilities: { roots: { listChanged: true }, sampling: {}, elicitation: {} },
  clientInfo: { name: "claude-code", version: "2.1.332" },
};

const VISIBLE_ASCII = /^[\x21-\x7E]+$/;

function mint(userId = ALICE, essentials = CLAUDE_CODE, secrets = [CURRENT, PREVIOUS]) {
  return mintSessionToken(userId, essentials, { secrets, now: NOW });
}

function verify(token: string, userId = ALICE, options: { secrets?: string[]; now?: number } = {}): VerifyResult {
  return verifySessionToken(token, userId, {
    secrets: options.secrets ?? [CURRENT, PREVIOUS],
    maxAgeSeconds: MAX_AGE,
    now: options.now ?? NOW,
  });
}

/** Replaces the character at `index` with another of the same kind, so the token stays well-formed. */
function flipAt(token: string, index: number): string {
  const char = token.charAt(index);
  const replacement = /[0-9]/.test(char) ? String((Number(char) + 1) % 10) : char === "A" ? "B" : "A";
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

describe("session tokens", () => {
  it("round-trips: a minted token verifies for its user with the same nonce and issue time", () => {
    const { token, nonce } = mint();
    expect(token.startsWith("mcpb1.")).toBe(true);
    expect(verify(token)).toEqual({
      valid: true,
      nonce,
      issuedAt: Math.floor(NOW / 1000),
      essentials: CLAUDE_CODE,
    });
  });

  it("preserves the initialize essentials, including non-ASCII text, while the token stays visible ASCII", () => {
    const essentials: InitializeEssentials = {
      protocolVersion: "2025-11-25",
      capabilities: { roots: { listChanged: false }, experimental: { nested: { list: [1, "two", null] } } },
      clientInfo: { name: "Éditeur — 編集", version: "1.0.0-β", title: "A client", websiteUrl: "https://x.test" },
    };
    const { token } = mint(ALICE, essentials);
    expect(token).toMatch(VISIBLE_ASCII);
    expect(verify(token)).toMatchObject({ valid: true, essentials });
  });

  it("mints a fresh 128-bit nonce every time and keeps no secret or full user id in the token", () => {
    const minted = Array.from({ length: 50 }, () => mint());
    expect(new Set(minted.map((m) => m.nonce)).size).toBe(50);
    for (const { token, nonce } of minted) {
      expect(Buffer.from(nonce, "base64url")).toHaveLength(16);
      expect(token).not.toContain(CURRENT);
      expect(token).not.toContain(PREVIOUS);
      expect(token).not.toContain(ALICE);
      expect(token).toContain(ALICE.slice(0, 16));
    }
  });

  it("leaves oversized essentials to Redis: the token carries none, says so, and still verifies", () => {
    const bulky: InitializeEssentials = {
      ...CLAUDE_CODE,
      // Random text does not compress: well over the 2 KiB limit once deflated and encoded.
      clientInfo: { name: "bulky", version: "1", title: randomBytes(4096).toString("hex") },
    };
    const { token, nonce } = mint(ALICE, bulky);
    expect(token.split(".")[4]).toBe("r");
    expect(token.length).toBeLessThan(200);
    expect(verify(token)).toEqual({ valid: true, nonce, issuedAt: Math.floor(NOW / 1000), essentials: null });
  });

  it("honours a smaller essentials limit", () => {
    const tokens = new SessionTokens({ secrets: [CURRENT], maxAgeSeconds: MAX_AGE, essentialsLimit: 16 });
    const { token } = tokens.mint(ALICE, CLAUDE_CODE, NOW);
    expect(token.split(".")[4]).toBe("r");
    expect(tokens.verify(token, ALICE, NOW)).toMatchObject({ valid: true, essentials: null });
  });

  it("refuses a token with one character changed in any of its parts", () => {
    const { token } = mint();
    const parts = token.split(".");
    parts.forEach((part, index) => {
      const start = parts.slice(0, index).join(".").length + (index === 0 ? 0 : 1);
      const tampered = flipAt(token, start + Math.floor(part.length / 2));
      expect(tampered).not.toBe(token);
      expect(verify(tampered)).toMatchObject({ valid: false });
    });
  });

  it("refuses a token with any single character changed, at every position", () => {
    const { token } = mint();
    for (let index = 0; index < token.length; index++) {
      if (token.charAt(index) === ".") continue;
      expect(verify(flipAt(token, index))).toMatchObject({ valid: false });
    }
  });

  it("refuses another user's token, even one whose user id shares the 16-character binding", () => {
    const { token } = mint(ALICE);
    expect(verify(token, BOB)).toEqual({ valid: false, reason: "foreign-user" });
    const lookalike = ALICE.slice(0, 16) + BOB.slice(16);
    expect(verify(token, lookalike)).toEqual({ valid: false, reason: "bad-tag" });
  });

  it("refuses a token signed with a retired secret no longer in the list", () => {
    const { token } = mint(ALICE, CLAUDE_CODE, [RETIRED]);
    expect(verify(token, ALICE, { secrets: [CURRENT, PREVIOUS] })).toEqual({ valid: false, reason: "bad-tag" });
  });

  it("accepts a token signed with the previous secret while it is still second in the list", () => {
    const { token, nonce } = mint(ALICE, CLAUDE_CODE, [PREVIOUS]);
    expect(verify(token, ALICE, { secrets: [CURRENT, PREVIOUS] })).toMatchObject({ valid: true, nonce });
  });

  it("refuses malformed ids", () => {
    const { token } = mint();
    const parts = token.split(".");
    const malformed = [
      "",
      "mcpb1",
      "mcpb1.",
      ".....",
      parts.slice(0, 5).join("."),
      [...parts.slice(0, 2), ...parts.slice(3)].join("."),
      `${token}.`,
      `${token}.extra`,
      ["mcpb2", ...parts.slice(1)].join("."),
      ["MCPB1", ...parts.slice(1)].join("."),
      [...parts.slice(0, 2), "!!!!nonce-not-base64!!", ...parts.slice(3)].join("."),
      [...parts.slice(0, 2), `${parts[2]}=`, ...parts.slice(3)].join("."),
      [...parts.slice(0, 3), "-5", ...parts.slice(4)].join("."),
      [...parts.slice(0, 3), "0017", ...parts.slice(4)].join("."),
      [...parts.slice(0, 4), "x", parts[5]].join("."),
      [...parts.slice(0, 5), `${parts[5]?.slice(0, 42)}+`].join("."),
      [...parts.slice(0, 5), `${parts[5]}A`].join("."),
      token.replace(".", ". "),
      `${token.slice(0, 20)}é${token.slice(21)}`,
      `${token.slice(0, 20)}\u0000${token.slice(21)}`,
      "not a token at all",
    ];
    for (const candidate of malformed) {
      expect(verify(candidate)).toMatchObject({ valid: false });
    }
    expect(verify(undefined as unknown as string)).toEqual({ valid: false, reason: "malformed" });
  });

  it("refuses a 10 KiB id before parsing it", () => {
    const { token } = mint();
    const huge = token + "A".repeat(10 * 1024);
    expect(verify(huge)).toEqual({ valid: false, reason: "too-long" });
    expect(verify("A".repeat(MAX_TOKEN_LENGTH + 1))).toEqual({ valid: false, reason: "too-long" });
  });

  it("refuses a token older than its max age, and accepts it up to that age", () => {
    const { token } = mint();
    expect(verify(token, ALICE, { now: NOW + MAX_AGE * 1000 })).toMatchObject({ valid: true });
    expect(verify(token, ALICE, { now: NOW + (MAX_AGE + 1) * 1000 })).toEqual({ valid: false, reason: "expired" });
  });

  it("refuses a token issued far in the future (a replica's clock gone wrong)", () => {
    const { token } = mint();
    expect(verify(token, ALICE, { now: NOW - 60_000 })).toMatchObject({ valid: true });
    expect(verify(token, ALICE, { now: NOW - 3600_000 })).toEqual({ valid: false, reason: "issued-in-future" });
  });

  it("gives every refusal the same shape, so callers answer all of them alike", () => {
    const { token } = mint();
    const refusals = [
      verify(""),
      verify("A".repeat(MAX_TOKEN_LENGTH + 1)),
      verify(token, BOB),
      verify(flipAt(token, token.length - 2)),
      verify(token, ALICE, { now: NOW + (MAX_AGE + 1) * 1000 }),
    ];
    for (const refusal of refusals) {
      expect(Object.keys(refusal).sort()).toEqual(["reason", "valid"]);
      expect(refusal.valid).toBe(false);
    }
  });

  it("keeps a typical Claude Code session id visible ASCII and under 1 KiB", () => {
    for (let i = 0; i < 100; i++) {
      const { token } = mintSessionToken(userIdOf(`ol_api_${i}`), CLAUDE_CODE, { secrets: [CURRENT] });
      expect(token).toMatch(VISIBLE_ASCII);
      expect(token.length).toBeLessThan(1024);
    }
  });

  it("keeps refusing a remembered token once it expires, for another user, or with a character changed", () => {
    const tokens = new SessionTokens({ secrets: [CURRENT], maxAgeSeconds: MAX_AGE });
    const { token, nonce } = tokens.mint(ALICE, CLAUDE_CODE, NOW);
    // The first verify checks the tag and remembers the token; the rest are answered from memory.
    for (let i = 0; i < 3; i++) expect(tokens.verify(token, ALICE, NOW)).toMatchObject({ valid: true, nonce });
    const remembered = tokens.verify(token, ALICE, NOW);
    expect(remembered.valid ? remembered.essentials : null).toEqual(CLAUDE_CODE);
    expect(tokens.verify(token, ALICE, NOW + (MAX_AGE + 1) * 1000)).toEqual({ valid: false, reason: "expired" });
    expect(tokens.verify(token, ALICE, NOW - 3600_000)).toEqual({ valid: false, reason: "issued-in-future" });
    expect(tokens.verify(token, BOB, NOW)).toEqual({ valid: false, reason: "foreign-user" });
    expect(tokens.verify(flipAt(token, token.length - 2), ALICE, NOW)).toEqual({ valid: false, reason: "bad-tag" });
    // Still valid for its own user after the refusals, and by a new instance (another replica) too.
    expect(tokens.verify(token, ALICE, NOW)).toMatchObject({ valid: true, nonce });
    const other = new SessionTokens({ secrets: [CURRENT], maxAgeSeconds: MAX_AGE });
    expect(other.verify(token, ALICE, NOW)).toMatchObject({ valid: true, nonce });
  });

  it("refuses to work with no secret or a short one", () => {
    expect(() => new SessionTokens({ secrets: [], maxAgeSeconds: MAX_AGE })).toThrow(RangeError);
    expect(() => new SessionTokens({ secrets: [CURRENT, "short"], maxAgeSeconds: MAX_AGE })).toThrow(RangeError);
    expect(() => mintSessionToken(ALICE, CLAUDE_CODE, { secrets: [] })).toThrow(RangeError);
    expect(() => mintSessionToken("not-hex", CLAUDE_CODE, { secrets: [CURRENT] })).toThrow(TypeError);
  });

  it("picks only the essentials from initialize params", () => {
    const params = { ...CLAUDE_CODE, _meta: { progressToken: 1 } };
    expect(pickEssentials(params)).toEqual(CLAUDE_CODE);
    expect(pickEssentials({ protocolVersion: "2025-06-18", capabilities: {} })).toBeNull();
    expect(pickEssentials(null)).toBeNull();
    expect(pickEssentials([CLAUDE_CODE])).toBeNull();
  });
});
