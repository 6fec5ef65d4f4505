import { once } from "node:events";
import { connect } from "node:net";

/** One command Redis ran, as MONITOR reports it: from a client's address, or "lua" inside a script. */
export interface MonitoredCommand {
  source: string;
  args: string[];
}

/**
 * Redis's MONITOR on a socket of its own, resolved once Redis confirmed it. Not ioredis's
 * `monitor()`: when the first monitor line arrives in the same read as MONITOR's "+OK", ioredis
 * is not yet in its monitoring state, takes the line for the reply to no command ("Command queue
 * state error") and rejects — on a busy server, now and then (seen in CI).
 */
export async function monitorRedis(
  url: string,
  onCommand: (command: MonitoredCommand) => void,
): Promise<{ close(): void }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.setEncoding("utf8");
  await once(socket, "connect");
  let confirm: () => void = () => {};
  const confirmed = new Promise<void>((resolve) => (confirm = resolve));
  let pending = "";
  socket.on("data", (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf("\r\n"); end >= 0; end = pending.indexOf("\r\n")) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      if (line === "+OK") confirm();
      // +1795911741.430242 [0 127.0.0.1:46758] "hgetall" "key"   (or [0 lua] inside a script)
      const match = /^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (!match) continue;
      const args = [...(match[2] ?? "").matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((arg) => arg[1] ?? "");
      onCommand({ source: match[1] ?? "", args });
    }
  });
  socket.write("MONITOR\r\n");
  await Promise.race([confirmed, once(socket, "error").then(([error]) => Promise.reject(error))]);
  return { close: () => socket.destroy() };
}
