import { once } from "node:events";
import { createServer, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { AnswerBody } from "./web-body.js";

describe("answer body piped to Node's response", () => {
  it("delivers a long answer whole to a slow client, without piling listeners on the response", async () => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    const chunks = 48;
    let response: ServerResponse | undefined;
    let mostListeners = 0;
    const server = createServer((_req, res) => {
      response = res;
      let sent = 0;
      const upstream = new Readable({
        read() {
          setImmediate(() => this.push(sent++ < chunks ? chunk : null));
        },
      });
      res.writeHead(200, { "content-type": "text/event-stream" });
      // What sourceOf makes of undici's body (a Node Readable too).
      const reading = upstream[Symbol.asyncIterator]();
      void new AnswerBody({ next: () => reading.next(), destroy: () => upstream.destroy() }).pipeTo(res);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    try {
      const received = await new Promise<number>((resolve, reject) => {
        request({ port, host: "127.0.0.1", path: "/" }, (res) => {
          let total = 0;
          res.on("data", (data: Buffer) => {
            total += data.length;
            const out = response as ServerResponse;
            mostListeners = Math.max(mostListeners, out.listenerCount("close"), out.listenerCount("drain"));
            // A slow reader: the gateway's writes meet a full buffer again and again.
            res.pause();
            setTimeout(() => res.resume(), 1);
          });
          res.on("end", () => resolve(total));
          res.on("error", reject);
        })
          .on("error", reject)
          .end();
      });
      expect(received).toBe(chunks * chunk.length);
      expect(mostListeners).toBeLessThanOrEqual(4);
    } finally {
      server.close();
    }
  });
});
