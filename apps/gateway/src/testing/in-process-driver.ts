import type { Backend, ContainerDriver, EnsureRequest, ManagedContainer } from "@mcp-broker/container-manager";

/** A running MCP server the driver started: its endpoint, and how to stop it. */
export interface InProcessServer {
  url: string;
  close(): Promise<void>;
}

interface Started<Server extends InProcessServer> {
  server: Server;
  userId: string;
  running: boolean;
  createdAt: number;
}

/**
 * A ContainerDriver whose "containers" are real HTTP MCP servers in this process, so the
 * gateway's rules run end to end with no container engine. `kill` stops one as a crash
 * would (its port then refuses); `declareDead` only makes the engine say so (a server dying
 * while it holds a connection).
 */
export class InProcessDriver<Server extends InProcessServer = InProcessServer> implements ContainerDriver {
  readonly kind = "process" as const;
  readonly started = new Map<string, Started<Server>>();
  #next = 0;

  constructor(private readonly startServer: (request: EnsureRequest) => Promise<Server>) {}

  async ensure(request: EnsureRequest): Promise<Backend> {
    for (const [containerId, started] of this.started) {
      if (started.userId === request.userId && started.running) return { containerId, endpoint: started.server.url };
    }
    const server = await this.startServer(request);
    const containerId = `in-process-${++this.#next}`;
    this.started.set(containerId, { server, userId: request.userId, running: true, createdAt: Date.now() });
    return { containerId, endpoint: server.url };
  }

  /** The servers started for a user, oldest first. */
  serversOf(userId: string): Server[] {
    return [...this.started.values()].filter((s) => s.userId === userId).map((s) => s.server);
  }

  async kill(containerId: string): Promise<void> {
    const started = this.started.get(containerId);
    if (!started) return;
    started.running = false;
    await started.server.close();
  }

  declareDead(containerId: string): void {
    const started = this.started.get(containerId);
    if (started) started.running = false;
  }

  async stop(containerId: string): Promise<void> {
    await this.kill(containerId);
  }

  async remove(containerId: string): Promise<void> {
    await this.kill(containerId);
    this.started.delete(containerId);
  }

  async listManaged(): Promise<ManagedContainer[]> {
    return [...this.started.keys()].flatMap((id) => {
      const container = this.#managed(id);
      return container ? [container] : [];
    });
  }

  async inspect(containerId: string): Promise<ManagedContainer | null> {
    return this.#managed(containerId);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    await Promise.all([...this.started.keys()].map((id) => this.remove(id)));
  }

  #managed(id: string): ManagedContainer | null {
    const started = this.started.get(id);
    if (!started) return null;
    return { id, userId: started.userId, name: id, running: started.running, createdAt: started.createdAt };
  }
}
