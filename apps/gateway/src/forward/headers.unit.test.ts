import { headerPolicy, webHeaders } from "./headers.js";

const policy = headerPolicy("X-Outline-API-Key");

describe("the header policy", () => {
  it("forwards only allow-listed headers: no hop-by-hop ones, credentials, Expect or encodings", () => {
    const upstream = policy.toUpstream(
      {
        connection: "keep-alive, x-hop",
        "keep-alive": "timeout=5",
        "proxy-connection": "keep-alive",
        "proxy-authorization": "Basic x",
        "proxy-authenticate": "Basic",
        te: "trailers",
        trailer: "x-sum",
        "transfer-encoding": "chunked",
        upgrade: "websocket",
        host: "gateway.example",
        "content-length": "42",
        "mcp-session-id": "broker-session",
        authorization: "Bearer ol_api_client",
        origin: "https://app.example",
        cookie: "a=b",
        "x-forwarded-for": "10.0.0.1",
        "x-outline-api-key": "ol_api_sent_by_client",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
        "last-event-id": "e7",
        "content-type": "application/json",
        "x-custom": ["a", "b"],
        expect: "100-continue",
        "accept-encoding": "gzip, br",
      },
      "ol_api_user",
    );
    expect(upstream).toEqual({
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
      "last-event-id": "e7",
      "content-type": "application/json",
      "accept-encoding": "identity",
      "x-outline-api-key": "ol_api_user",
    });
  });

  it("answers the client with the server's headers less hop-by-hop ones and the server's own session id", () => {
    const headers = policy.toClient({
      connection: "keep-alive",
      "keep-alive": "timeout=5",
      "proxy-connection": "keep-alive",
      "transfer-encoding": "chunked",
      "content-length": "10",
      date: "Mon, 01 Jan 2024 00:00:00 GMT",
      "mcp-session-id": "upstream-session",
      "content-type": "application/json",
      "www-authenticate": 'Bearer realm="outline"',
      "set-cookie": ["a=1", "b=2"],
    });
    expect(new Set(Object.keys(headers))).toEqual(new Set(["content-type", "set-cookie", "www-authenticate"]));
    expect(headers["www-authenticate"]).toBe('Bearer realm="outline"');
    expect(headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(webHeaders(headers)).toContainEqual(["set-cookie", "b=2"]);
  });

  it("sets the broker's session id, and the no-buffering hints on an event stream", () => {
    const headers = policy.toClient(
      { "content-type": "text/event-stream", "mcp-session-id": "upstream", "cache-control": "no-cache" },
      "broker-session",
    );
    expect(headers).toEqual({
      "content-type": "text/event-stream",
      "mcp-session-id": "broker-session",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    });
  });
});
