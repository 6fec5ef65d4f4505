import type { BrokerSession, Route } from "@mcp-broker/session-store";
import type { Logger } from "pino";
import { GatewayError } from "./errors.js";
import { classifyError, FAILURES, type FailureKind, failureError } from "./forward/failures.js";
import type { Metrics } from "./metrics.js";

/** What one attempt runs against; a recovery replaces one part or the other. */
export interface Attempt {
  route: Route;
  session: BrokerSession | null;
}

export interface RecoveryPlan<Sent, Result> {
  log: Logger;
  /** Sends the request; a throw means no answer, and is classified by forward/failures.ts. */
  send(attempt: Attempt): Promise<Sent>;
  /**
   * Reads what came back, with the failure it shows (forward/failures.ts `classifyAnswer`).
   * Its own errors are not classified: a request that was answered is never sent again.
   */
  settle(sent: Sent, attempt: Attempt): Promise<{ result: Result; failure: FailureKind | null }>;
  isAlive(route: Route): Promise<boolean>;
  /** A server in place of `stale`; absent when the request may not start one (a GET only listens). */
  replaceServer?: ((stale: Route) => Promise<Route>) | undefined;
  /** A new upstream session in place of `attempt.session`'s. */
  reviveSession?: ((attempt: Attempt) => Promise<BrokerSession>) | undefined;
  /** True once the client went away: nothing is sent again for a client that is gone. */
  clientGone?: (() => boolean) | undefined;
}

/**
 * The one recovery loop (docs/architecture.md#recovery-and-replay), used by every request
 * and by the opening of a pooled session. A failure's kind (forward/failures.ts) says which
 * recovery applies; each applies at most once per request, then the failure is the answer.
 * MCP says clients re-initialize on 404; Claude Code does not (anthropics/claude-code#8338),
 * so the broker does it for them.
 */
export async function withRecovery<Sent, Result>(
  metrics: Metrics,
  plan: RecoveryPlan<Sent, Result>,
  first: Attempt,
): Promise<{ result: Result; attempt: Attempt }> {
  let attempt = first;
  let replacedServer = false;
  let revivedSession = false;
  for (;;) {
    let sent: Sent;
    try {
      sent = await plan.send(attempt);
    } catch (error) {
      const failure = classifyError(error);
      const { recovery } = FAILURES[failure];
      const replaceable = recovery === "replace-server" || recovery === "replace-server-if-dead";
      if (!replaceable || replacedServer || plan.clientGone?.()) throw failureError(error);
      if (!plan.replaceServer) throw new GatewayError("NO_STREAM");
      if (recovery === "replace-server-if-dead" && (await plan.isAlive(attempt.route))) throw failureError(error);
      replacedServer = true;
      metrics.recoveries.inc({ kind: "container" });
      plan.log.warn(
        { container: attempt.route.containerId.slice(0, 12), failure },
        "MCP server unreachable; re-creating it",
      );
      attempt = { ...attempt, route: await plan.replaceServer(attempt.route) };
      continue;
    }
    const { result, failure } = await plan.settle(sent, attempt);
    const revivable = failure !== null && FAILURES[failure].recovery === "revive-session";
    if (revivable && attempt.session && plan.reviveSession && !revivedSession) {
      revivedSession = true;
      metrics.recoveries.inc({ kind: "session" });
      attempt = { ...attempt, session: await plan.reviveSession(attempt) };
      continue;
    }
    return { result, attempt };
  }
}
