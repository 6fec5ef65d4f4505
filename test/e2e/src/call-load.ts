import { setTimeout as sleep } from "node:timers/promises";
import { connectClient, MCP_POST_HEADERS, parseRpcBody, resultText } from "@mcp-broker/test-support";

type Client = Awaited<ReturnType<typeof connectClient>>;

/** What the clients saw while one phase of a failover test ran. */
export interface PhaseResult {
  name: string;
  calls: number;
  failures: number;
  slowestMs: number;
  /** Milliseconds from the phase's start to the first and last failed call's start (negative: sent before it). */
  failureWindowMs?: [number, number];
  errors: string[];
  /** Calls slower than `slowMs`: client and start, from the phase's start. */
  slowCalls: string[];
}

export interface CallLoadOptions {
  url: string;
  apiKey: string;
  sdkClients: number;
  sessionlessClients: number;
  /** Pause between one client's calls. */
  pauseMs: number;
  /** Upper bound on every client's calls, so a loop can never run away. */
  maxCallsPerClient: number;
  /** Calls slower than this are listed in their phase's `slowCalls`. */
  slowMs: number;
}

/**
 * MCP clients calling `echo` in loops through the balancer: SDK clients with their own sessions
 * and session-less clients (plain POSTs, the broker's pooled session). Every call is timed and
 * booked to the phase that was current when it ended: a call sent a few ms before `docker kill`
 * and lost with the replica is the kill's (seen in CI: it had been booked to the phase before,
 * which allows no failure). Its start is then given from that phase's start, negative if it
 * was sent before. A call fails on any transport error, non-200 answer, JSON-RPC error or wrong echo.
 */
export class CallLoad {
  private readonly results: PhaseResult[] = [];
  private current: { result: PhaseResult; startedAt: number } | undefined;
  private running = false;
  private loops: Promise<void>[] = [];
  private clients: Client[] = [];

  constructor(private readonly options: CallLoadOptions) {}

  async start(firstPhase: string): Promise<void> {
    this.clients = await Promise.all(
      Array.from({ length: this.options.sdkClients }, () =>
        connectClient(this.options.url, { "X-Outline-API-Key": this.options.apiKey }),
      ),
    );
    this.phase(firstPhase);
    this.running = true;
    this.loops = [
      ...this.clients.map((client, index) => this.loop(`sdk${index}`, (text) => this.callSdk(client, text))),
      ...Array.from({ length: this.options.sessionlessClients }, (_, index) =>
        this.loop(`plain${index}`, (text) => this.callSessionless(text)),
      ),
    ];
  }

  /** Ends the current phase and books every call that ends from now on to `name`. */
  phase(name: string): PhaseResult {
    const result: PhaseResult = { name, calls: 0, failures: 0, slowestMs: 0, errors: [], slowCalls: [] };
    this.results.push(result);
    this.current = { result, startedAt: Date.now() };
    return result;
  }

  /** Stops the loops (each finishes its call in flight) and closes the SDK clients. */
  async stop(): Promise<PhaseResult[]> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((client) => client.close().catch(() => {})));
    return this.results;
  }

  /** One line per phase: calls, failures, slowest call, failure window. */
  static table(results: PhaseResult[]): string {
    const width = Math.max(...results.map((result) => result.name.length));
    const rows = results.map(
      (r) =>
        `${r.name.padEnd(width)} | ${String(r.calls).padStart(5)} | ${String(r.failures).padStart(8)} | ${String(r.slowestMs).padStart(7)} ms` +
        (r.failureWindowMs ? ` | failures from +${r.failureWindowMs[0]} ms to +${r.failureWindowMs[1]} ms` : ""),
    );
    return [`${"phase".padEnd(width)} | calls | failures | slowest`, ...rows].join("\n");
  }

  private async loop(name: string, call: (text: string) => Promise<void>): Promise<void> {
    for (let i = 0; this.running && i < this.options.maxCallsPerClient; i++) {
      const started = Date.now();
      let error: unknown;
      try {
        await call(`${name} call ${i}`);
      } catch (caught) {
        error = caught;
      }
      const ms = Date.now() - started;
      const phase = this.current;
      if (!phase) return;
      const result = phase.result;
      result.calls++;
      result.slowestMs = Math.max(result.slowestMs, ms);
      const at = started - phase.startedAt;
      const when = `${name} at +${at} ms (${new Date(started).toISOString().slice(11, 23)})`;
      if (ms > this.options.slowMs && result.slowCalls.length < 5) result.slowCalls.push(`${when}: ${ms} ms`);
      if (error !== undefined) {
        result.failures++;
        const [first, last] = result.failureWindowMs ?? [at, at];
        result.failureWindowMs = [Math.min(first, at), Math.max(last, at)];
        if (result.errors.length < 5) result.errors.push(`${when}: ${describe(error)}`);
      }
      await sleep(this.options.pauseMs);
    }
  }

  private async callSdk(client: Client, text: string): Promise<void> {
    const answer = resultText(await client.callTool({ name: "echo", arguments: { text } }));
    if (answer !== text) throw new Error(`echo answered ${JSON.stringify(answer)}`);
  }

  private async callSessionless(text: string): Promise<void> {
    const response = await fetch(this.options.url, {
      method: "POST",
      headers: { ...MCP_POST_HEADERS, "X-Outline-API-Key": this.options.apiKey },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "echo", arguments: { text } },
      }),
    });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${body.slice(0, 200)}`);
    const answer = resultText(
      (parseRpcBody(response.headers.get("content-type"), body) as { result?: unknown }).result,
    );
    if (answer !== text) throw new Error(`echo answered ${JSON.stringify(answer)}`);
  }
}

/** An error's message with its cause's (fetch reports the socket error only as its cause). */
function describe(error: unknown): string {
  const { message, cause } = error as { message?: string; cause?: { code?: string; message?: string } };
  return cause ? `${message} (${cause.code ?? cause.message})` : (message ?? String(error));
}
