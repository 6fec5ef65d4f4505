import { type EnginePolicy, isBrokerContainer } from "@mcp-broker/container-manager";
import type { Engine } from "./engine.js";

export type Resolved =
  | { ok: true; id: string }
  /** The engine's own answer (404 for a container that does not exist), passed on as it is. */
  | { ok: false; status: number; text: string; headers: Headers }
  | { ok: false; refused: string };

interface Known {
  id: string;
  until: number;
}

/**
 * Resolves a container reference (name, id or id prefix) to the id of one of this deployment's
 * backends, or refuses it. The call is then sent for that id, never for the name, so a name
 * re-pointed at another container between the check and the call cannot redirect it.
 * Positive answers are kept briefly: a gateway inspects, starts and inspects the same container
 * within a second, and labels never change during a container's life.
 */
export class BrokerContainers {
  readonly #known = new Map<string, Known>();

  constructor(
    private readonly engine: Engine,
    private readonly policy: EnginePolicy,
    private readonly ttlMs = 2000,
    private readonly maxEntries = 10_000,
  ) {}

  async resolve(ref: string, version: string): Promise<Resolved> {
    const known = this.#known.get(ref);
    if (known && known.until > Date.now()) return { ok: true, id: known.id };
    const answer = await this.engine.json({ method: "GET", path: `${version}/containers/${ref}/json` });
    if (answer.status !== 200) return { ok: false, status: answer.status, text: answer.text, headers: answer.headers };
    const info = answer.body as { Id?: unknown; Config?: { Labels?: unknown } } | undefined;
    if (typeof info?.Id !== "string" || !isBrokerContainer(info.Config?.Labels, this.policy)) {
      return { ok: false, refused: `container ${ref} is not a backend of deployment ${this.policy.deployment}` };
    }
    if (this.#known.size >= this.maxEntries) this.#known.clear();
    this.#known.set(ref, { id: info.Id, until: Date.now() + this.ttlMs });
    return { ok: true, id: info.Id };
  }

  /** After a removal: the name may be reused by the next container at once. */
  forget(ref: string, id: string): void {
    for (const [key, known] of this.#known) if (key === ref || known.id === id) this.#known.delete(key);
  }
}
