import type { Tool } from "@modelcontextprotocol/sdk/types.js";

/**
 * What the MCP conformance suite's server scenarios ask for, as data: the content blobs, the
 * tools with their schemas, the elicitation forms, the resources and the prompts
 * (conformance-tools.ts serves them).
 */

/** A 1×1 PNG and a minimal WAV: the suite checks type, data and MIME type, not the pixels. */
export const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
export const WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

const NO_ARGS = { type: "object" as const, properties: {} };

/** SEP-1613: a tool whose schema keeps JSON Schema 2020-12 keywords as written. */
const JSON_SCHEMA_2020_12 = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object" as const,
  $defs: { address: { type: "object", properties: { street: { type: "string" }, city: { type: "string" } } } },
  properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
  additionalProperties: false,
};

export const TOOLS: Tool[] = [
  { name: "test_simple_text", description: "Returns simple text content", inputSchema: NO_ARGS },
  { name: "test_image_content", description: "Returns image content", inputSchema: NO_ARGS },
  { name: "test_audio_content", description: "Returns audio content", inputSchema: NO_ARGS },
  { name: "test_embedded_resource", description: "Returns an embedded resource", inputSchema: NO_ARGS },
  { name: "test_multiple_content_types", description: "Returns text, image and resource", inputSchema: NO_ARGS },
  { name: "test_tool_with_logging", description: "Sends log messages while it runs", inputSchema: NO_ARGS },
  { name: "test_tool_with_progress", description: "Reports progress while it runs", inputSchema: NO_ARGS },
  { name: "test_error_handling", description: "Always fails, as a tool error", inputSchema: NO_ARGS },
  {
    name: "test_sampling",
    description: "Asks the client for an LLM completion (sampling/createMessage)",
    inputSchema: { type: "object", properties: { prompt: { type: "string" } }, required: ["prompt"] },
  },
  {
    name: "test_elicitation",
    description: "Asks the user for input (elicitation/create)",
    inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
  },
  {
    name: "test_elicitation_sep1034_defaults",
    description: "Elicitation with defaults (SEP-1034)",
    inputSchema: NO_ARGS,
  },
  {
    name: "test_elicitation_sep1330_enums",
    description: "Elicitation with enum schemas (SEP-1330)",
    inputSchema: NO_ARGS,
  },
  {
    name: "json_schema_2020_12_tool",
    description: "JSON Schema 2020-12 keywords (SEP-1613)",
    inputSchema: JSON_SCHEMA_2020_12,
  },
];

export const SEP1034_SCHEMA = {
  type: "object" as const,
  properties: {
    name: { type: "string" as const, description: "User name", default: "John Doe" },
    age: { type: "integer" as const, description: "User age", default: 30 },
    score: { type: "number" as const, description: "User score", default: 95.5 },
    status: {
      type: "string" as const,
      description: "User status",
      enum: ["active", "inactive", "pending"],
      default: "active",
    },
    verified: { type: "boolean" as const, description: "Verification status", default: true },
  },
  required: [],
};

export const SEP1330_SCHEMA = {
  type: "object" as const,
  properties: {
    untitledSingle: { type: "string", description: "Select one option", enum: ["option1", "option2", "option3"] },
    titledSingle: {
      type: "string",
      description: "Select one option with titles",
      oneOf: [
        { const: "value1", title: "First Option" },
        { const: "value2", title: "Second Option" },
        { const: "value3", title: "Third Option" },
      ],
    },
    legacyEnum: {
      type: "string",
      description: "Select one option (legacy)",
      enum: ["opt1", "opt2", "opt3"],
      enumNames: ["Option One", "Option Two", "Option Three"],
    },
    untitledMulti: {
      type: "array",
      description: "Select multiple options",
      minItems: 1,
      maxItems: 3,
      items: { type: "string", enum: ["option1", "option2", "option3"] },
    },
    titledMulti: {
      type: "array",
      description: "Select multiple options with titles",
      minItems: 1,
      maxItems: 3,
      items: {
        anyOf: [
          { const: "value1", title: "First Choice" },
          { const: "value2", title: "Second Choice" },
          { const: "value3", title: "Third Choice" },
        ],
      },
    },
  },
  required: [],
};

export const RESOURCES = [
  {
    uri: "test://static-text",
    name: "static-text",
    mimeType: "text/plain",
    text: "This is the content of the static text resource.",
  },
  { uri: "test://static-binary", name: "static-binary", mimeType: "image/png", blob: PNG },
  {
    uri: "test://watched-resource",
    name: "watched-resource",
    mimeType: "text/plain",
    text: "Watched resource content",
  },
];

export const PROMPTS = [
  { name: "test_simple_prompt", description: "A prompt without arguments" },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two required arguments",
    arguments: [
      { name: "arg1", description: "First argument", required: true },
      { name: "arg2", description: "Second argument", required: true },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt that embeds a resource",
    arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
  },
  { name: "test_prompt_with_image", description: "A prompt with image content" },
];
