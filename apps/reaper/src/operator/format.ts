/** How the operator view and the CLI write times and durations, so both read the same. */

export function duration(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${(ms / 1000).toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

/** UTC, to the second: operators compare these with JSON logs, which are UTC. */
export function time(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "—";
}

export const running = (value: boolean | null) => (value === null ? "not listed" : value ? "running" : "stopped");

/** The hour's events, grouped the way the README's failure table names them. */
export function eventGroups(counts: Record<string, number>) {
  const group = (head: string) =>
    Object.entries(counts)
      .filter(([event]) => event === head || event.startsWith(`${head}:`))
      .map(([event, count]) => ({ cause: event.slice(head.length + 1) || "—", count }))
      .sort((a, b) => a.cause.localeCompare(b.cause));
  return [
    { title: "Recoveries", metric: "mcpb_recoveries_total", rows: group("recovery") },
    { title: "Session revivals", metric: "mcpb_session_revivals_total", rows: group("revival") },
    { title: "Replays refused", metric: "mcpb_replays_refused_total", rows: group("replay-refused") },
  ];
}
