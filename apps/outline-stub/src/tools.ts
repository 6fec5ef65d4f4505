import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { DocumentStore } from "./documents.js";

export interface ToolContext {
  documents: DocumentStore;
  /** The key the process was started with (`OUTLINE_API_KEY`); "" when it started without one. */
  apiKey: string;
  /** Random per process, so callers can tell one server instance from another. */
  instanceId: string;
  /** Tool calls that ended because the client cancelled them (`notifications/cancelled`). */
  cancelled: { count: number };
}

/** A short, one-way fingerprint: enough to tell two keys apart, useless for recovering one. */
export function fingerprint(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}

/**
 * A tool result; `_meta.sessionId` names the MCP session it ran in, so a test can tell which
 * upstream session served a call (the broker maps its own session ids onto these).
 */
const text = (value: unknown, extra: { sessionId?: string | undefined }) => ({
  content: [{ type: "text" as const, text: typeof value === "string" ? value : JSON.stringify(value) }],
  _meta: { sessionId: extra.sessionId ?? null },
});

/** Tools that change nothing: a client (or the broker) may repeat them after a lost connection. */
const READ_ONLY = { readOnlyHint: true } as const;

export function createMcpServer(context: ToolContext): McpServer {
  const server = new McpServer({ name: "outline-stub", version: "0.1.0" }, { capabilities: { logging: {} } });

  server.registerTool(
    "search_documents",
    {
      description: "Search documents by a word or phrase in their title or text.",
      inputSchema: { query: z.string().min(1), limit: z.number().int().min(1).max(100).optional() },
      annotations: READ_ONLY,
    },
    ({ query, limit }, extra) =>
      text(
        context.documents.search(query, limit).map(({ id, title }) => ({ id, title })),
        extra,
      ),
  );

  server.registerTool(
    "read_document",
    { description: "Read one document by id.", inputSchema: { id: z.string().min(1) }, annotations: READ_ONLY },
    ({ id }, extra) => {
      const document = context.documents.read(id);
      if (!document) return { ...text(`document ${id} not found`, extra), isError: true };
      return text(document, extra);
    },
  );

  server.registerTool(
    "create_document",
    {
      description:
        "Create a document and return it; with `delay_ms`, after that long (for tests that stop the server mid-call).",
      inputSchema: {
        title: z.string().min(1),
        text: z.string(),
        delay_ms: z.number().int().min(0).max(60_000).optional(),
      },
      // Not read-only, not idempotent: a second call creates a second document.
    },
    async ({ title, text: body, delay_ms }, extra) => {
      if (delay_ms) await sleep(delay_ms, undefined, { signal: extra.signal });
      return text(context.documents.create(title, body), extra);
    },
  );

  server.registerTool(
    "whoami",
    {
      description:
        "Fingerprints of the key this request runs as (the request's key header ahead of the start key), of the start key and of the header's key; the request's W3C traceparent.",
      annotations: READ_ONLY,
    },
    (extra) => {
      // The Outline MCP server reads x-outline-api-key per request, ahead of its env key.
      const header = extra.requestInfo?.headers["x-outline-api-key"];
      const requestKey = (Array.isArray(header) ? header[0] : header) || undefined;
      const key = requestKey ?? context.apiKey;
      return text(
        {
          key: key ? fingerprint(key) : null,
          startKey: context.apiKey ? fingerprint(context.apiKey) : null,
          requestKey: requestKey ? fingerprint(requestKey) : null,
          instance: context.instanceId,
          pid: process.pid,
          cancelled: context.cancelled.count,
          session: extra.sessionId ?? null,
          // What the broker propagated (docs/architecture.md#tracing): the test matches its trace id.
          traceparent: extra.requestInfo?.headers.traceparent ?? null,
        },
        extra,
      );
    },
  );

  server.registerTool(
    "echo",
    {
      description: "Answer with `text` after `delay_ms` (for tests of concurrent, overlapping requests).",
      inputSchema: { text: z.string(), delay_ms: z.number().int().min(0).max(60_000).optional() },
      annotations: READ_ONLY,
    },
    async ({ text: value, delay_ms }, extra) => {
      if (delay_ms) await sleep(delay_ms, undefined, { signal: extra.signal });
      return text(value, extra);
    },
  );

  server.registerTool(
    "slow_task",
    {
      description: "Work for `seconds`, reporting progress each second, then answer.",
      inputSchema: { seconds: z.number().int().min(0).max(600) },
      annotations: READ_ONLY,
    },
    async ({ seconds }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let done = 1; done <= seconds; done++) {
        try {
          await sleep(1000, undefined, { signal: extra.signal });
        } catch (error) {
          if (extra.signal.aborted) context.cancelled.count++;
          throw error;
        }
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken, progress: done, total: seconds, message: `${done}/${seconds}s` },
          });
        }
      }
      return text(`slow_task finished after ${seconds}s`, extra);
    },
  );

  registerServerInitiated(server);
  return server;
}

/**
 * Tools whose server sends on the session's standalone GET stream (no related request), as a
 * server does for its own reasons: notifications after the call returned, a sampling request.
 */
function registerServerInitiated(server: McpServer): void {
  server.registerTool(
    "notify_later",
    {
      description:
        "Answer at once, then send `count` notifications/message (data: {series, seq}) on the standalone stream, `interval_ms` apart.",
      inputSchema: {
        count: z.number().int().min(1).max(1000),
        interval_ms: z.number().int().min(0).max(10_000),
        series: z.string().max(64).optional(),
      },
    },
    ({ count, interval_ms, series }, extra) => {
      const send = async () => {
        for (let seq = 1; seq <= count; seq++) {
          await sleep(interval_ms);
          const data = { series: series ?? "", seq };
          await server.server.notification({ method: "notifications/message", params: { level: "info", data } });
        }
      };
      send().catch(() => {}); // the session ended meanwhile
      return text(`scheduled ${count} notifications`, extra);
    },
  );

  server.registerTool(
    "ask_sampling",
    {
      description:
        "Send sampling/createMessage with `prompt` on the standalone stream (not the call's), answer with the client's reply.",
      inputSchema: { prompt: z.string().min(1).max(4096) },
    },
    async ({ prompt }, extra) => {
      const answer = await server.server.createMessage(
        { messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens: 64 },
        { signal: extra.signal },
      );
      return text({ sampled: answer.content.type === "text" ? answer.content.text : answer.content }, extra);
    },
  );
}
