import { Hono } from "hono";
import { type Listening, listen } from "./listen.js";

/** A route whose answer streams until the test releases it: an in-flight response on demand. */
function slowApp() {
  const releases: Array<() => void> = [];
  const app = new Hono();
  app.get("/fast", (c) => c.text("fast"));
  app.get("/slow", () => {
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("started "));
        releases.push(() => {
          controller.enqueue(new TextEncoder().encode("finished"));
          controller.close();
        });
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  });
  const release = () => {
    for (const finish of releases.splice(0)) finish();
  };
  return { app, release };
}

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("listen", () => {
  let listening: Listening | undefined;
  afterEach(async () => {
    await listening?.close();
    listening = undefined;
  });

  it("listens on a free port, with a 127.0.0.1 url for a wildcard host", async () => {
    listening = await listen(slowApp().app.fetch, { port: 0, host: "0.0.0.0" });
    expect(listening.port).toBeGreaterThan(0);
    expect(listening.url).toBe(`http://127.0.0.1:${listening.port}`);
    expect(await (await fetch(`${listening.url}/fast`)).text()).toBe("fast");
  });

  it("rejects when the port is taken", async () => {
    listening = await listen(slowApp().app.fetch, { port: 0, host: "127.0.0.1" });
    await expect(listen(slowApp().app.fetch, { port: listening.port, host: "127.0.0.1" })).rejects.toMatchObject({
      code: "EADDRINUSE",
    });
  });

  it("on close stops accepting but lets an in-flight response finish within the deadline", async () => {
    const { app, release } = slowApp();
    const server = await listen(app.fetch, { port: 0, host: "127.0.0.1" });
    const response = await fetch(`${server.url}/slow`);
    expect(server.inFlight()).toBe(1);

    const closed = server.close(5000);
    await expect(fetch(`${server.url}/fast`)).rejects.toThrow();
    release();
    expect(await response.text()).toBe("started finished");
    await closed;
    expect(server.inFlight()).toBe(0);
  });

  it("cuts an in-flight response once the deadline has passed", async () => {
    const { app } = slowApp();
    const server = await listen(app.fetch, { port: 0, host: "127.0.0.1" });
    const response = await fetch(`${server.url}/slow`);
    await server.close(100);
    await expect(response.text()).rejects.toThrow();
    await waitFor(() => server.inFlight() === 0);
  });
});
