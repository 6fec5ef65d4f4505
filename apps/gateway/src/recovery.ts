import { inSpan } from "@mcp-broker/service-runtime";
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
  /** Whether the route's server still runs (asked after a lost connection). */
  isAlive(route: Route): Promise<boolean>;
  /** A server in place of `stale`; absent when the request may not start one (a GET only listens). */
  replaceServer?: ((stale: Route) => Promise<Route>) | undefined;
  /** A new upstream session in place of `attempt.session`'s (on the route it was opened on). */
  reviveSession?: ((attempt: Attempt) => Promise<Attempt>) | undefined;
  /**
   * Whether what was sent may be sent again after its connection was lost (forward/failures.ts
   * `safeToRepeat`); absent: it may (the broker's own initialize, a GET).
   */
  safeToRepeat?: (() => Promise<boolean>) | undefined;
  /** True once the client went away: nothing is sent again for a client that is gone. */
  clientGone?: (() => boolean) | undefined;
}

/**
 * The recoveries one request has used: each runs at most once per request, and a request whose
 * event stream broke after its headers continues with the same budget.
 */
export interface RecoveryBudget {
  replacedServer: boolean;
  revivedSession: boolean;
  repeatedOnLiveServer: boolean;
}

export const freshBudget = (): RecoveryBudget => ({
  replacedServer: false,
  revivedSession: false,
  repeatedOnLiveServer: false,
});

/**
 * The one recovery loop (docs/architecture.md#recovery-and-replay), used by every request, by
 * the rest of an event stream that broke, and by the broker's own initializes. A failure's kind
 * (forward/failures.ts) says which recovery applies and what may be sent again; each recovery
 * applies at most once per request, then the failure is the answer. MCP says clients
 * re-initialize on 404; Claude Code does not (anthropics/claude-code#8338), so the broker does
 * it for them. `broken`: the answer's stream already broke with this error, recover it first.
 */
export async function withRecovery<Sent, Result>(
  metrics: Metrics,
  plan: RecoveryPlan<Sent, Result>,
  first: Attempt,
  options: { budget?: RecoveryBudget; broken?: unknown } = {},
): Promise<{ result: Result; attempt: Attempt }> {
  const budget = options.budget ?? freshBudget();
  let attempt = first;
  let failed: { error: unknown } | null = "broken" in options ? { error: options.broken } : null;
  for (;;) {
    if (failed) {
      attempt = await recoverFrom(failed.error, metrics, plan, budget, attempt);
      failed = null;
    }
    let sent: Sent;
    try {
      sent = await plan.send(attempt);
    } catch (error) {
      failed = { error };
      continue;
    }
    const { result, failure } = await plan.settle(sent, attempt);
    const revivable = failure !== null && FAILURES[failure].recovery === "revive-session";
    if (revivable && attempt.session && plan.reviveSession && !budget.revivedSession) {
      budget.revivedSession = true;
      metrics.recovered("session");
      const revive = plan.reviveSession;
      const current = attempt;
      attempt = await inSpan("recover session", () => revive(current), {
        attributes: () => ({ "mcpb.failure": failure }),
      });
      continue;
    }
    return { result, attempt };
  }
}

/** The attempt to send next after `error`, or the client's answer, thrown. */
async function recoverFrom<Sent, Result>(
  error: unknown,
  metrics: Metrics,
  plan: RecoveryPlan<Sent, Result>,
  budget: RecoveryBudget,
  attempt: Attempt,
): Promise<Attempt> {
  const failure = classifyError(error);
  const { recovery, replay } = FAILURES[failure];
  if (plan.clientGone?.()) throw failureError(error);
  if (recovery === "replace-server") return replaceServer(error, failure, metrics, plan, budget, attempt);
  if (recovery !== "replace-server-if-dead") throw failureError(error);

  // The connection was lost after sending: the server may have acted on the request.
  const dead = !(await plan.isAlive(attempt.route));
  const safe = replay !== "safe-only" || !plan.safeToRepeat || (await plan.safeToRepeat());
  if (!safe) {
    metrics.replayRefused();
    if (!dead) throw failureError(error);
    plan.log.warn({ failure }, "MCP server stopped during a call that is not safe to repeat; not repeating it");
    if (plan.replaceServer && !budget.replacedServer) {
      // Re-created before answering, so the client's next call finds a server.
      await replaceServer(error, failure, metrics, plan, budget, attempt).catch((replaceError: Error) =>
        plan.log.warn({ err: replaceError.message }, "could not re-create the MCP server after it stopped"),
      );
    }
    throw new GatewayError("NOT_REPEATED", "", { cause: error });
  }
  if (dead) return replaceServer(error, failure, metrics, plan, budget, attempt);
  if (budget.repeatedOnLiveServer) throw failureError(error);
  budget.repeatedOnLiveServer = true;
  plan.log.warn({ failure }, "connection to the MCP server lost; sending again (safe to repeat)");
  return attempt;
}

async function replaceServer<Sent, Result>(
  error: unknown,
  failure: FailureKind,
  metrics: Metrics,
  plan: RecoveryPlan<Sent, Result>,
  budget: RecoveryBudget,
  attempt: Attempt,
): Promise<Attempt> {
  if (budget.replacedServer) throw failureError(error);
  if (!plan.replaceServer) throw new GatewayError("NO_STREAM");
  budget.replacedServer = true;
  metrics.recovered("container");
  plan.log.warn(
    { container: attempt.route.containerId.slice(0, 12), failure },
    "MCP server unreachable; re-creating it",
  );
  const replace = plan.replaceServer;
  const route = await inSpan("recover server", () => replace(attempt.route), {
    attributes: () => ({ "mcpb.failure": failure }),
  });
  return { ...attempt, route };
}
