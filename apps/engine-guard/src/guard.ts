import {
  checkContainerName,
  checkCreate,
  type EnginePolicy,
  isBrokerContainer,
  isPeerContainer,
  PER_USER_NETWORK,
} from "@mcp-broker/container-manager";
import type { Logger } from "pino";
import { readLimited } from "./body.js";
import type { GuardRole } from "./config.js";
import { BrokerContainers } from "./containers.js";
import { type Engine, streamed } from "./engine.js";
import { networkCall } from "./networks.js";
import { type Operation, parseRequest } from "./operations.js";

export interface GuardDeps {
  policy: EnginePolicy;
  role: GuardRole;
  engine: Engine;
  log: Logger;
}

/** A create body is a few kilobytes; anything near this is not the driver's. */
const MAX_CREATE_BODY_BYTES = 256 * 1024;

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * The guard as a fetch handler: each request is parsed into an allowed operation or refused
 * with 403 and a JSON `message` (what Docker clients show), and an allowed one is sent to the
 * engine rebuilt from its checked parts. docs/architecture.md#trust-boundaries.
 */
export function createGuard({ policy, role, engine, log }: GuardDeps): (request: Request) => Promise<Response> {
  const containers = new BrokerContainers(engine, policy);

  const refuse = (request: Request, url: URL, reason: string) => {
    // The path only: dockerode copies create options, the key among them, into the query string.
    log.warn({ method: request.method, path: url.pathname, role, reason }, "engine call refused");
    return json(403, { message: `refused by the engine guard: ${reason}` });
  };

  async function forward(request: Request, url: URL, op: Operation): Promise<Response> {
    const query = op.query.size > 0 ? `?${op.query}` : "";
    const signal = request.signal;
    switch (op.name) {
      case "ping":
      case "version":
      case "info": {
        const path = { ping: "/_ping", version: "/version", info: "/info" }[op.name];
        return streamed(
          await engine.call({ method: request.method === "HEAD" ? "HEAD" : "GET", path: op.version + path, signal }),
          request.method,
        );
      }
      case "list": {
        const answer = await engine.json({ method: "GET", path: `${op.version}/containers/json${query}`, signal });
        if (answer.status !== 200 || !Array.isArray(answer.body)) return new Response(answer.text, answer);
        // The filter already selects only backends (or peers); checking each entry again costs nothing.
        return json(
          200,
          answer.body.filter(
            (entry) =>
              isBrokerContainer(entry?.Labels, policy) ||
              (policy.network === PER_USER_NETWORK && isPeerContainer(entry?.Labels, policy)),
          ),
        );
      }
      case "inspect": {
        const path = `${op.version}/containers/${op.ref}/json${query}`;
        const answer = await engine.json({ method: "GET", path, signal });
        if (answer.status !== 200) return new Response(answer.text, answer);
        const info = answer.body as { Config?: { Labels?: unknown; Env?: unknown } } | undefined;
        if (!isBrokerContainer(info?.Config?.Labels, policy)) {
          return refuse(request, url, `container ${op.ref} is not a backend of deployment ${policy.deployment}`);
        }
        return json(200, withoutEnvValues(info));
      }
      case "create":
        return create(request, url, op);
      case "image-inspect":
        return streamed(
          await engine.call({ method: "GET", path: `${op.version}/images/${op.image}/json`, signal }),
          "GET",
        );
      case "image-pull": {
        const auth = request.headers.get("x-registry-auth");
        const headers = auth ? { "x-registry-auth": auth } : {};
        return streamed(
          await engine.call({ method: "POST", path: `${op.version}/images/create${query}`, headers, signal }),
          "POST",
        );
      }
      case "network-list":
      case "network-create":
      case "network-inspect":
      case "network-connect":
      case "network-disconnect":
      case "network-remove": {
        const answer = await networkCall(engine, policy, request, op);
        return answer instanceof Response ? answer : refuse(request, url, answer.refused);
      }
      default:
        return onContainer(request, url, op, query);
    }
  }

  /** start, stop, kill, wait, logs, remove: only of a backend, and sent for its resolved id. */
  async function onContainer(request: Request, url: URL, op: Operation, query: string): Promise<Response> {
    const ref = op.ref as string;
    const target = await containers.resolve(ref, op.version);
    if (!target.ok) {
      return "refused" in target ? refuse(request, url, target.refused) : new Response(target.text, target);
    }
    const base = `${op.version}/containers/${target.id}`;
    const path = op.name === "remove" ? `${base}${query}` : `${base}/${op.name}${query}`;
    const method = op.name === "remove" ? "DELETE" : op.name === "logs" ? "GET" : "POST";
    // No body is sent: below API 1.24 a `start` body was a HostConfig, and nothing else takes one.
    const answer = await engine.call({ method, path, signal: request.signal });
    if (op.name === "remove") containers.forget(ref, target.id);
    return streamed(answer, method);
  }

  async function create(request: Request, url: URL, op: Operation): Promise<Response> {
    const name = op.query.get("name");
    if (!name) return refuse(request, url, "a backend container needs its name");
    const nameProblem = checkContainerName(name, policy);
    if (nameProblem) return refuse(request, url, nameProblem);
    const text = await readLimited(request, MAX_CREATE_BODY_BYTES);
    if (text === undefined) return refuse(request, url, `create body over ${MAX_CREATE_BODY_BYTES} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return refuse(request, url, "create body is not JSON");
    }
    const problems = checkCreate(body, policy);
    // A backend joins the network of its own name, never another user's.
    const networkMode = (body as { HostConfig?: { NetworkMode?: unknown } }).HostConfig?.NetworkMode;
    if (policy.network === PER_USER_NETWORK && networkMode !== name) {
      problems.push(`HostConfig.NetworkMode: must be the backend's own network ${JSON.stringify(name)}`);
    }
    if (problems.length > 0) return refuse(request, url, problems.join("; "));
    // Re-serialised from what was checked: duplicate keys or odd encodings the engine's JSON
    // decoder might read differently never reach it.
    const { name: _ignored, ...checked } = body as Record<string, unknown>;
    const answer = await engine.call({
      method: "POST",
      path: `${op.version}/containers/create?${new URLSearchParams({ name })}`,
      body: JSON.stringify(checked),
      signal: request.signal,
    });
    return streamed(answer, "POST");
  }

  return async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/health" && request.method === "GET") return json(200, { ok: true, role });
    // attach, exec and /session hijack the connection into a raw stream: never allowed.
    if (request.headers.has("upgrade")) return refuse(request, url, "connection upgrades are not allowed");
    const parsed = parseRequest(request.method, url, role, policy);
    if (!parsed.ok) return refuse(request, url, parsed.reason);
    try {
      return await forward(request, url, parsed.operation);
    } catch (error) {
      if (request.signal.aborted) return new Response(null, { status: 499 });
      log.warn({ err: (error as Error).message, operation: parsed.operation.name }, "engine call failed");
      // 503, which the driver reads as "engine unavailable", as it reads a socket that is gone.
      return json(503, { message: `Docker engine unavailable: ${(error as Error).message}` });
    }
  };
}

/** An inspect answer without the env values: the user's key is one of them. Names stay, for debugging. */
function withoutEnvValues<T extends { Config?: { Env?: unknown } } | undefined>(info: T): T {
  const env = info?.Config?.Env;
  if (info?.Config && Array.isArray(env)) {
    info.Config.Env = env.map((entry) => `${String(entry).split("=")[0]}=[redacted]`);
  }
  return info;
}
