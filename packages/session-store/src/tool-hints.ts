import type { Redis } from "ioredis";
import { guard } from "./guard.js";
import type { Keyspace } from "./keys.js";
import type { StoreScripts } from "./scripts.js";

/** Most tool names kept per user: a bound on what one server's `tools/list` can store. */
export const MAX_SAFE_TOOLS = 512;
/** Longest tool name kept (MCP names are short identifiers; a longer one is simply not remembered). */
const MAX_TOOL_NAME = 128;
/** How long a user's hints live after the last `tools/list` that set them. */
const HINTS_TTL_MS = 30 * 24 * 3600 * 1000;

/** One tool of a `tools/list` answer, as the replay rule needs it. */
export interface ToolHint {
  name: string;
  /** The tool's annotations say `readOnlyHint: true` or `idempotentHint: true`. */
  safeToRepeat: boolean;
}

/**
 * Per user, which tools their server annotates as safe to repeat, as the last `tools/list`
 * answer through the broker said (docs/architecture.md#recovery-and-replay). Read only when a
 * call was lost with its server, so the hot path never pays for it.
 */
export class ToolHints {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly scripts: StoreScripts,
  ) {}

  async record(userId: string, tools: readonly ToolHint[]): Promise<void> {
    const named = tools.filter((tool) => tool.name.length > 0 && tool.name.length <= MAX_TOOL_NAME);
    if (named.length === 0) return;
    const safe = named.filter((tool) => tool.safeToRepeat).map((tool) => tool.name);
    const unsafe = named.filter((tool) => !tool.safeToRepeat).map((tool) => tool.name);
    await guard(() =>
      this.scripts.recordToolHints(
        this.keys.safeTools(userId),
        HINTS_TTL_MS,
        MAX_SAFE_TOOLS,
        safe.length,
        ...safe,
        ...unsafe,
      ),
    );
  }

  /** Those of `names` the user's last `tools/list` called safe to repeat. */
  async safe(userId: string, names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const flags = await guard(() => this.redis.smismember(this.keys.safeTools(userId), ...names));
    return new Set(names.filter((_, i) => flags[i] === 1));
  }
}
