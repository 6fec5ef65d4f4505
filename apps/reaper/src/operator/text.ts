import type { BrokerSession } from "@mcp-broker/session-store";
import { duration, eventGroups, running, time } from "./format.js";
import { type Overview, type PoolView, type ServerRow, shortUser } from "./overview.js";

/** Left-aligned columns, as wide as their widest cell. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

export function usersText(servers: ServerRow[]): string {
  if (servers.length === 0) return "no user has a server";
  return table(
    ["USER", "CONTAINER", "STATE", "CREATED (UTC)", "LAST USED (UTC)", "IDLE", "SESSIONS", "COLD START"],
    servers.map((row) => [
      shortUser(row.userId),
      row.containerId.slice(0, 12),
      row.state === "stopping" ? "stopping" : running(row.running),
      time(row.createdAt),
      time(row.lastUsedAt),
      duration(row.idleMs),
      String(row.sessions),
      duration(row.coldStartMs) + (row.fromPool ? " (pool)" : ""),
    ]),
  );
}

export function poolText(pool: PoolView): string {
  const starting = `${pool.spares.length} ready, ${pool.starting} starting`;
  if (pool.spares.length === 0) return `warm pool: ${starting}`;
  return [
    `warm pool: ${starting}`,
    table(
      ["SPARE", "STATE", "CREATED (UTC)", "AGE"],
      pool.spares.map((spare) => [
        spare.containerId.slice(0, 12),
        running(spare.running),
        time(spare.createdAt),
        duration(spare.ageMs),
      ]),
    ),
  ].join("\n");
}

/** `mcp-broker status`: the operator view as text, section by section. */
export function statusText(overview: Overview): string {
  const hour = eventGroups(overview.lastHour)
    .map((group) => {
      const counts = group.rows.map((r) => (r.cause === "—" ? String(r.count) : `${r.cause}=${r.count}`));
      return `  ${group.title.padEnd(17)} ${counts.length > 0 ? counts.join(" ") : "none"}`;
    })
    .join("\n");
  const sweeps =
    overview.sweeps.length === 0
      ? "  none kept"
      : overview.sweeps
          .map((s) => {
            const r = s.result;
            const what = s.failedReason
              ? `failed: ${s.failedReason}`
              : r
                ? `released ${r.sessionsEnded} sessions, stopped ${r.containersStopped} idle, ${r.orphansRemoved} orphans, ${r.staleRoutesRemoved} stale routes`
                : "—";
            return `  ${time(s.finishedAt)}  ${duration(s.durationMs).padStart(7)}  ${what}`;
          })
          .join("\n");
  return [
    `Users with a server (${overview.servers.length}) as of ${time(overview.at)} UTC`,
    usersText(overview.servers),
    "",
    poolText(overview.pool),
    "",
    "Last hour",
    hour,
    "",
    "Last sweeps",
    sweeps,
  ].join("\n");
}

export function sessionsText(userId: string, sessions: BrokerSession[]): string {
  if (sessions.length === 0) return `user ${shortUser(userId)} has no live session`;
  return table(
    ["SESSION", "PROTOCOL", "CREATED (UTC)", "LAST USED (UTC)", "UPSTREAM SESSION"],
    sessions.map((s) => [
      s.id.slice(0, 8),
      s.protocolVersion,
      time(s.createdAt),
      time(s.lastUsedAt),
      s.upstreamSessionId.slice(0, 12),
    ]),
  );
}
