import { setTimeout as sleep } from "node:timers/promises";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  type GetPromptResult,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type ReadResourceResult,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { PNG, PROMPTS, RESOURCES, SEP1034_SCHEMA, SEP1330_SCHEMA, TOOLS, WAV } from "./conformance-fixtures.js";

/**
 * The MCP conformance suite's server specification (`@modelcontextprotocol/conformance`, its
 * server scenarios and the "everything" server it describes): every tool, resource and prompt
 * those scenarios call, so the suite can pass every check against this server directly and
 * through the broker (test/e2e conformance.test.ts). `STUB_TOOLS=conformance` selects it.
 */

const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] });

export function createConformanceServer(): Server {
  const server = new Server(
    { name: "outline-stub-conformance", version: "0.1.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set<string>();

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const args = (request.params.arguments ?? {}) as Record<string, unknown>;
    // Notifications that belong to this call go on its own stream (relatedRequestId).
    const notify = (method: string, params: Record<string, unknown>) =>
      extra.sendNotification({ method, params } as Parameters<typeof extra.sendNotification>[0]);
    switch (request.params.name) {
      case "test_simple_text":
        return text("This is a simple text response for testing.");
      case "test_image_content":
        return { content: [{ type: "image", data: PNG, mimeType: "image/png" }] };
      case "test_audio_content":
        return { content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] };
      case "test_embedded_resource":
        return {
          content: [
            {
              type: "resource",
              resource: {
                uri: "test://embedded-resource",
                mimeType: "text/plain",
                text: "This is an embedded resource content.",
              },
            },
          ],
        };
      case "test_multiple_content_types":
        return {
          content: [
            { type: "text", text: "Multiple content types test:" },
            { type: "image", data: PNG, mimeType: "image/png" },
            {
              type: "resource",
              resource: {
                uri: "test://mixed-content-resource",
                mimeType: "application/json",
                text: '{"test":"data","value":123}',
              },
            },
          ],
        };
      case "test_tool_with_logging":
        for (const step of ["Tool execution started", "Tool processing data", "Tool execution completed"]) {
          await notify("notifications/message", { level: "info", data: step });
          await sleep(50);
        }
        return text("Tool with logging executed successfully");
      case "test_tool_with_progress": {
        const progressToken = request.params._meta?.progressToken ?? 0;
        for (const progress of [0, 50, 100]) {
          await notify("notifications/progress", { progressToken, progress, total: 100, message: `step ${progress}` });
          await sleep(50);
        }
        return text(String(progressToken));
      }
      case "test_error_handling":
        return {
          isError: true,
          content: [{ type: "text", text: "This tool intentionally returns an error for testing" }],
        };
      // The server-to-client requests go out as the suite's reference server sends them: not tied
      // to the call (no relatedRequestId), so on the session's standalone GET stream.
      case "test_sampling": {
        const answer = await server.request(
          {
            method: "sampling/createMessage",
            params: {
              messages: [{ role: "user", content: { type: "text", text: String(args.prompt) } }],
              maxTokens: 100,
            },
          },
          CreateMessageResultSchema,
        );
        const content = answer.content as { type: string; text?: string };
        return text(`LLM response: ${content.type === "text" ? content.text : "(not text)"}`);
      }
      case "test_elicitation":
        return elicit(server, String(args.message), {
          type: "object",
          properties: { response: { type: "string", description: "User's response" } },
          required: ["response"],
        });
      case "test_elicitation_sep1034_defaults":
        return elicit(server, "Please review and update the form fields with defaults", SEP1034_SCHEMA);
      case "test_elicitation_sep1330_enums":
        return elicit(server, "Please select options from the enum fields", SEP1330_SCHEMA);
      case "json_schema_2020_12_tool":
        return text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`);
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: RESOURCES.map(({ uri, name, mimeType }) => ({ uri, name, mimeType })),
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
    resourceTemplates: [{ uriTemplate: "test://template/{id}/data", name: "template", mimeType: "application/json" }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, ({ params }): ReadResourceResult => {
    const fixed = RESOURCES.find((resource) => resource.uri === params.uri);
    if (fixed) {
      const { name: _name, ...contents } = fixed;
      return { contents: [contents] };
    }
    const id = /^test:\/\/template\/([^/]+)\/data$/.exec(params.uri)?.[1];
    if (id === undefined) throw new McpError(ErrorCode.InvalidParams, `Unknown resource: ${params.uri}`);
    const data = JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` });
    return { contents: [{ uri: params.uri, mimeType: "application/json", text: data }] };
  });
  server.setRequestHandler(SubscribeRequestSchema, ({ params }) => {
    subscriptions.add(params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, ({ params }) => {
    subscriptions.delete(params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, ({ params }): GetPromptResult => {
    const args = params.arguments ?? {};
    const user = (content: GetPromptResult["messages"][number]["content"]) => ({ role: "user" as const, content });
    switch (params.name) {
      case "test_simple_prompt":
        return { messages: [user({ type: "text", text: "This is a simple prompt for testing." })] };
      case "test_prompt_with_arguments":
        return {
          messages: [user({ type: "text", text: `Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'` })],
        };
      case "test_prompt_with_embedded_resource":
        return {
          messages: [
            user({
              type: "resource",
              resource: {
                uri: String(args.resourceUri),
                mimeType: "text/plain",
                text: "Embedded resource content for testing.",
              },
            }),
            user({ type: "text", text: "Please process the embedded resource above." }),
          ],
        };
      case "test_prompt_with_image":
        return {
          messages: [
            user({ type: "image", data: PNG, mimeType: "image/png" }),
            user({ type: "text", text: "Please analyze the image above." }),
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${params.name}`);
    }
  });

  server.setRequestHandler(SetLevelRequestSchema, () => ({}));
  server.setRequestHandler(CompleteRequestSchema, () => ({ completion: { values: [], total: 0, hasMore: false } }));
  return server;
}

async function elicit(server: Server, message: string, requestedSchema: object): Promise<CallToolResult> {
  const answer = await server.request(
    { method: "elicitation/create", params: { mode: "form", message, requestedSchema } } as never,
    ElicitResultSchema,
  );
  return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`);
}
