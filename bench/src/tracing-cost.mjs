// What OpenTelemetry tracing costs the gateway (issue 17): the warm-path load (`tools/call echo`
// on one session) against one gateway process per variant — tracing off, on (every request
// sampled, OTLP/HTTP protobuf to a sink in this process), on with 10% sampled, and off again
// (the two "off" rows show the machine's noise) — and the gateway process's CPU per request from
// /proc/<pid>/stat (all its threads). Standalone: `node bench/src/tracing-cost.mjs [--quick]`
// (needs `npm run build` and the outline-stub image); `tracingCost()` is what `run.mjs` can call.
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { initialize, measure } from "./load.mjs";
import { docker, removeDeployment, startGateway, startRedis, stopAll } from "./stack.mjs";

const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

/** User + system CPU of a process so far, in microseconds (utime and stime, fields 14 and 15). */
function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e6;
}

/** An OTLP/HTTP sink: answers every export as a collector does and counts what arrived. */
async function startOtlpSink() {
  const received = { exports: 0, bytes: 0 };
  const server = createServer((request, response) => {
    request.on("data", (chunk) => {
      received.bytes += chunk.length;
    });
    request.on("end", () => {
      received.exports++;
      response.writeHead(200, { "content-type": request.headers["content-type"] ?? "application/json" }).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { endpoint: `http://127.0.0.1:${server.address().port}`, received, close: () => server.close() };
}

/**
 * Runs each variant for `seconds` with `connections` connections; resolves to one row per
 * variant: requests per second, p50/p99 latency (ms), gateway CPU µs per request, and for the
 * traced ones the OTLP exports and bytes the sink received.
 */
export async function tracingCost({ seconds = 10, connections = 10 } = {}) {
  const deployment = `otel${process.pid}`;
  const sink = await startOtlpSink();
  const rows = [];
  let redis;
  try {
    redis = await startRedis();
    const base = {
      REDIS_URL: redis.url,
      KEY_HASH_SECRET: "bench-tracing-secret-0123",
      BACKEND_IMAGE: "mcp-broker/outline-stub:local",
      BACKEND_PULL: "false",
      DEPLOYMENT_NAME: deployment,
      RATE_LIMIT_PER_MINUTE: "0",
      LOG_LEVEL: "warn",
      // Whatever the caller's shell says, each variant decides tracing itself.
      OTEL_EXPORTER_OTLP_ENDPOINT: "",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "",
      OTEL_TRACES_SAMPLER: "",
      OTEL_TRACES_SAMPLER_ARG: "",
    };
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" };
    const variants = [
      ["off", {}],
      ["on, every request sampled", on],
      ["on, 10% sampled", { ...on, OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" }],
      ["off (again)", {}],
    ];
    const headers = { "x-outline-api-key": "ol_api_bench_tracing_0001" };
    for (const [name, env] of variants) {
      const gateway = await startGateway({ ...base, ...env });
      // A session of its own per gateway; the server (found by its route in Redis) is shared.
      const session = await initialize(gateway.url, headers);
      const target = { headers: { ...headers, "mcp-session-id": session } };
      await measure({ url: gateway.url, targets: [target], connections, seconds: 1 }); // warm-up (JIT, pools)
      const before = { cpu: cpuMicros(gateway.pid), ...sink.received };
      const result = await measure({ url: gateway.url, targets: [target], connections, seconds });
      const cpu = cpuMicros(gateway.pid) - before.cpu;
      gateway.child.kill("SIGTERM");
      await once(gateway.child, "exit"); // exports what the batch processor still holds
      rows.push({
        variant: name,
        rps: Math.round(result.rps),
        p50: result.p50,
        p99: result.p99,
        cpuMicrosPerRequest: Math.round(cpu / result.total),
        otlpExports: sink.received.exports - before.exports,
        otlpKiB: Math.round((sink.received.bytes - before.bytes) / 1024),
      });
    }
  } finally {
    sink.close();
    // Only what this function started: inside `npm run bench` the other sections' gateways and
    // Redis keep running.
    if (redis) {
      try {
        docker("rm", "-f", redis.name);
      } catch {}
    }
    removeDeployment(deployment);
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes("--quick");
  const rows = await tracingCost({ seconds: quick ? 3 : 10 });
  await stopAll();
  console.log("| tracing | req/s | p50 ms | p99 ms | gateway CPU µs/request | OTLP exports | OTLP KiB |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const row of rows) {
    console.log(
      `| ${row.variant} | ${row.rps} | ${row.p50} | ${row.p99} | ${row.cpuMicrosPerRequest} | ${row.otlpExports} | ${row.otlpKiB} |`,
    );
  }
}
