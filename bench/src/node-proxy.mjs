// The floor for any Node gateway: `node:http` in, undici `request` out through one keep-alive
// Agent, bodies piped both ways, hop-by-hop headers dropped, no session logic at all.
// `node bench/src/node-proxy.mjs <port> <upstream origin>`.
import { createServer } from "node:http";
import { pipeline } from "node:stream";
import { Agent, request } from "undici";

const [port, origin] = process.argv.slice(2);
const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);
const DROP_UP = new Set([...HOP_BY_HOP, "host"]);

createServer(async (req, res) => {
  const headers = {};
  for (const name in req.headers) if (!DROP_UP.has(name)) headers[name] = req.headers[name];
  try {
    const upstream = await request(`${origin}${req.url}`, {
      dispatcher,
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? null : req,
    });
    const answer = {};
    for (const name in upstream.headers) if (!HOP_BY_HOP.has(name)) answer[name] = upstream.headers[name];
    res.writeHead(upstream.statusCode, answer);
    pipeline(upstream.body, res, () => {});
  } catch {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  }
}).listen(Number(port), "127.0.0.1");
