import {
  checkNetworkCreate,
  type EnginePolicy,
  isBrokerNetwork,
  isPeerContainer,
  networkMember,
} from "@mcp-broker/container-manager";
import { readLimited } from "./body.js";
import { type Engine, streamed } from "./engine.js";
import type { Operation } from "./operations.js";

/** A refusal (403 with this reason) or the response to send. */
export type NetworkAnswer = { refused: string } | Response;

/** A network create or connect body is a few hundred bytes. */
const MAX_NETWORK_BODY_BYTES = 16 * 1024;

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * Per-user backend networks through the guard (container-manager network-policy.ts): only this
 * deployment's labelled networks are listed, inspected, connected, disconnected or removed; a
 * create must be the driver's own body; only the deployment's peers (gateways, reaper) may be
 * connected. Every call goes to the engine for the resolved id, never for the caller's name.
 */
export async function networkCall(
  engine: Engine,
  policy: EnginePolicy,
  request: Request,
  op: Operation,
): Promise<NetworkAnswer> {
  const { version } = op;
  const signal = request.signal;
  if (op.name === "network-list") {
    const answer = await engine.json({ method: "GET", path: `${version}/networks?${op.query}`, signal });
    if (answer.status !== 200 || !Array.isArray(answer.body)) return new Response(answer.text, answer);
    return json(
      200,
      answer.body.filter((entry) => isBrokerNetwork(entry?.Labels, policy)),
    );
  }
  if (op.name === "network-create") {
    const body = parseBody(await readLimited(request, MAX_NETWORK_BODY_BYTES));
    if (typeof body === "string") return { refused: body };
    const problems = checkNetworkCreate(body, policy);
    if (problems.length > 0) return { refused: problems.join("; ") };
    return streamed(
      await engine.call({ method: "POST", path: `${version}/networks/create`, body: JSON.stringify(body), signal }),
      "POST",
    );
  }

  const network = await engine.json({ method: "GET", path: `${version}/networks/${op.ref}`, signal });
  if (network.status !== 200) return new Response(network.text, network);
  const info = network.body as { Id?: unknown; Labels?: unknown } | undefined;
  if (typeof info?.Id !== "string" || !isBrokerNetwork(info.Labels, policy)) {
    return { refused: `network ${op.ref} is not a backend network of deployment ${policy.deployment}` };
  }
  const base = `${version}/networks/${info.Id}`;
  switch (op.name) {
    case "network-inspect":
      return json(200, info);
    case "network-remove":
      return streamed(await engine.call({ method: "DELETE", path: base, signal }), "DELETE");
    case "network-connect":
    case "network-disconnect": {
      const action = op.name === "network-connect" ? "connect" : "disconnect";
      const member = networkMember(parseBody(await readLimited(request, MAX_NETWORK_BODY_BYTES)), action);
      if (!member.ok) return { refused: member.reason };
      const container = await engine.json({
        method: "GET",
        path: `${version}/containers/${member.container}/json`,
        signal,
      });
      if (container.status !== 200) return new Response(container.text, container);
      const target = container.body as { Id?: unknown; Config?: { Labels?: unknown } } | undefined;
      if (typeof target?.Id !== "string") return { refused: `container ${member.container} has no id` };
      // Disconnecting anything from a backend network only narrows it; joining one is for peers alone
      // (a backend joins its own network at create, and never another's).
      if (action === "connect" && !isPeerContainer(target.Config?.Labels, policy)) {
        return { refused: `container ${member.container} is not a peer of deployment ${policy.deployment}` };
      }
      const body = action === "connect" ? { Container: target.Id } : { Container: target.Id, Force: member.force };
      return streamed(
        await engine.call({ method: "POST", path: `${base}/${action}`, body: JSON.stringify(body), signal }),
        "POST",
      );
    }
    default:
      return { refused: `${op.name} is not a network call` };
  }
}

/** The parsed body, or why it is not one. */
function parseBody(text: string | undefined): unknown {
  if (text === undefined) return `body over ${MAX_NETWORK_BODY_BYTES} bytes`;
  try {
    const body: unknown = JSON.parse(text);
    return typeof body === "string" ? "body is not a JSON object" : body;
  } catch {
    return "body is not JSON";
  }
}
