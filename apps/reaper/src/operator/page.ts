import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { duration, eventGroups, running, time } from "./format.js";
import { type Overview, type ServerRow, type SweepRow, shortUser } from "./overview.js";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}
td.num{text-align:right}
.note{padding:.5rem .8rem;background:#eef6ee;border:1px solid #9c9}
.error{background:#fbeaea;border-color:#d99}
code{font-size:13px}
`;

function serverRow(row: ServerRow, stopPath: string): Html {
  return html`<tr data-user="${row.userId}">
    <td><code>${shortUser(row.userId)}</code></td>
    <td><code>${row.containerId.slice(0, 12)}</code> (${running(row.running)}${row.state === "stopping" ? ", stopping" : ""})</td>
    <td>${time(row.createdAt)}</td>
    <td>${time(row.lastUsedAt)}</td>
    <td class="num">${duration(row.idleMs)}</td>
    <td class="num">${row.sessions}</td>
    <td class="num">${duration(row.coldStartMs)}${row.fromPool ? " (pool)" : ""}</td>
    <td>
      <form method="post" action="${stopPath}">
        <input type="hidden" name="user" value="${row.userId}">
        <button type="submit">Stop server</button>
      </form>
    </td>
  </tr>`;
}

function sweepRow(row: SweepRow): Html {
  const r = row.result;
  return html`<tr>
    <td>${row.id}</td>
    <td>${time(row.finishedAt)}</td>
    <td class="num">${duration(row.durationMs)}</td>
    <td>${
      row.failedReason
        ? html`failed: ${row.failedReason}`
        : r
          ? `${r.sessionsEnded} sessions released, ${r.containersStopped} idle servers, ${r.orphansRemoved} orphans, ${r.staleRoutesRemoved} stale routes${r.failures.length ? `, ${r.failures.length} refused to stop` : ""}${r.truncated ? " (more next sweep)" : ""}`
          : "—"
    }</td>
  </tr>`;
}

/**
 * The operator view (README, Operations): who has a server, the last sweeps and the last hour's
 * recoveries, as plain HTML with one form per server, so it works without JavaScript.
 */
export function operatorPage(
  overview: Overview,
  options: { stopPath: string; boardPath: string; notice?: { text: string; error: boolean } },
): Html {
  const { servers, sweeps } = overview;
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>MCP Session Broker — operator view</title><style>${STYLE}</style></head>
<body>
  <h1>MCP Session Broker</h1>
  <p>As of ${time(overview.at)} UTC · <a href="${options.boardPath}">sweep queue (bull-board)</a></p>
  ${options.notice ? html`<p class="note${options.notice.error ? " error" : ""}" role="status">${options.notice.text}</p>` : ""}
  <h2>Users with a server (${servers.length})</h2>
  <table id="servers">
    <thead><tr><th>user</th><th>container</th><th>created</th><th>last used</th><th>idle for</th><th>sessions</th><th>cold start</th><th></th></tr></thead>
    <tbody>${servers.map((row) => serverRow(row, options.stopPath))}</tbody>
  </table>
  <h2>Warm pool (${overview.pool.spares.length} ready, ${overview.pool.starting} starting)</h2>
  <table id="pool">
    <thead><tr><th>spare</th><th>state</th><th>created</th><th>age</th></tr></thead>
    <tbody>${overview.pool.spares.map(
      (spare) =>
        html`<tr><td><code>${spare.containerId.slice(0, 12)}</code></td><td>${running(spare.running)}</td><td>${time(spare.createdAt)}</td><td class="num">${duration(spare.ageMs)}</td></tr>`,
    )}</tbody>
  </table>
  <h2>Last hour</h2>
  ${eventGroups(overview.lastHour).map(
    (group) => html`<h3>${group.title} <small><code>${group.metric}</code></small></h3>
      ${
        group.rows.length === 0
          ? html`<p>none</p>`
          : html`<table><tr><th>cause</th><th>count</th></tr>${group.rows.map(
              (r) => html`<tr><td>${r.cause}</td><td class="num">${r.count}</td></tr>`,
            )}</table>`
      }`,
  )}
  <h2>Last sweeps</h2>
  <table id="sweeps">
    <thead><tr><th>job</th><th>finished</th><th>took</th><th>result</th></tr></thead>
    <tbody>${sweeps.map(sweepRow)}</tbody>
  </table>
</body>
</html>`;
}
