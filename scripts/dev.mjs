// `npm run dev`: the whole broker on this machine, for trying it out and for development.
// `npm run dev` first runs the host step (scripts/host.sh dev), which provides the Docker engine
// and redis-server where it can. Redis: REDIS_URL if set, else a container (when a Docker engine
// answers), else redis-server from PATH. Backends: outline-stub containers when Docker answers
// (and NO_DOCKER is unset), else outline-stub processes.
// Gateway and reaper run in this process. Ctrl-C stops everything this started.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const say = (line) => process.stdout.write(`[dev] ${line}\n`);
const run = (cmd, args, options = {}) => execFileSync(cmd, args, { cwd: root, stdio: "inherit", ...options });
const quiet = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return null;
  }
};
const onPath = (name) => quiet("sh", ["-c", `command -v ${name}`]);

const deployment = process.env.DEPLOYMENT_NAME ?? "dev";
const cleanups = [];
// NO_DOCKER=1 runs everything as local processes even where an engine answers.
const hasDocker = !process.env.NO_DOCKER && quiet("docker", ["info", "--format", "{{.ServerVersion}}"]) !== null;

say("building (turbo caches what has not changed)");
run("npx", ["turbo", "run", "build", "--output-logs=errors-only"], {
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
});
if (hasDocker) run("bash", ["scripts/images.sh"], { env: { ...process.env, SKIP_APP_IMAGES: "1" } });
// Imported only now: the build above is what produces it.
const { freePort } = await import("@mcp-broker/service-runtime");

let redisUrl = process.env.REDIS_URL;
if (!redisUrl) {
  const port = await freePort();
  if (hasDocker) {
    const name = `mcpb-${deployment}-redis`;
    quiet("docker", ["rm", "-f", name]);
    run("docker", ["run", "-d", "--rm", "--name", name, "-p", `127.0.0.1:${port}:6379`, "mcp-broker/redis:local"], {
      stdio: "ignore",
    });
    cleanups.push(() => quiet("docker", ["rm", "-f", name]));
    say(`Redis: container ${name} on 127.0.0.1:${port}`);
  } else if (onPath("redis-server")) {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    cleanups.push(() => child.kill("SIGTERM"));
    say(`Redis: redis-server (pid ${child.pid}) on 127.0.0.1:${port}`);
  } else {
    console.error(
      "[dev] no Redis: set REDIS_URL to a running server, or start a Docker engine, or install redis-server (apt-get install redis-server)",
    );
    process.exit(1);
  }
  redisUrl = `redis://127.0.0.1:${port}`;
}

const gatewayPkg = await import("../apps/gateway/dist/index.js");
const reaperPkg = await import("../apps/reaper/dist/index.js");
const { pino } = await import("pino");
const logger = pino({ level: process.env.LOG_LEVEL ?? "info" });

// Keys are verified, as in production: against the stub's fake Outline `POST /api/auth.info`,
// which accepts demo keys (with "demo" in them) only. AUTH_VERIFY_URL or AUTH_VERIFY=off override.
const stubPkg = await import("../apps/outline-stub/dist/index.js");
const authDemo = await stubPkg.startStub({ apiKey: "auth-demo-only", allowedKeyPattern: /^ol_api_[A-Za-z0-9_]*demo/ });
cleanups.push(() => authDemo.close());

const stub = fileURLToPath(new URL("../apps/outline-stub/dist/bundle/server.mjs", import.meta.url));
if (!hasDocker && !existsSync(stub)) throw new Error(`${stub} is missing after the build`);
const env = {
  PORT: process.env.PORT ?? "8080",
  HOST: process.env.HOST ?? "127.0.0.1",
  KEY_HASH_SECRET: process.env.KEY_HASH_SECRET ?? randomBytes(24).toString("hex"),
  DEPLOYMENT_NAME: deployment,
  BACKEND_DRIVER: hasDocker ? "docker" : "process",
  BACKEND_IMAGE: process.env.BACKEND_IMAGE ?? "mcp-broker/outline-stub:local",
  BACKEND_COMMAND: `${process.execPath} ${stub}`,
  BACKEND_PULL: "false",
  WARM_POOL_SIZE: "2",
  AUTH_VERIFY_URL: authDemo.url.replace("/mcp", "/api/auth.info"),
  ...process.env,
  REDIS_URL: redisUrl,
};
const config = gatewayPkg.loadConfig(env);
const driver = gatewayPkg.createDriver(config, logger);
const gateway = await gatewayPkg.startGateway(config, logger, { driver });
const reaperConfig = reaperPkg.loadConfig({
  DASHBOARD_HOST: "127.0.0.1",
  ...env,
  DASHBOARD_PORT: process.env.DASHBOARD_PORT ?? "3001",
});
const reaperStore = gatewayPkg.createStore(config, logger);
const reaper = await reaperPkg.startReaper({ config: reaperConfig, store: reaperStore, driver, logger });

const demoKey = `ol_api_demo_${randomBytes(12).toString("hex")}`;
say(
  `backends: ${config.BACKEND_DRIVER === "docker" ? `containers of ${config.BACKEND_IMAGE}` : "outline-stub processes"}`,
);
say(`gateway:   ${gateway.url}`);
say(`dashboard: ${reaper.dashboardUrl}`);
say("connect Claude Code with:");
process.stdout.write(
  `  claude mcp add --transport http Outline ${gateway.url} --header "X-Outline-API-Key: ${demoKey}"\n`,
);
say("ready (Ctrl-C stops everything)");

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  say("stopping");
  await reaper.close().catch(() => {});
  await reaperStore.close().catch(() => {});
  await gateway.close().catch(() => {});
  for (const container of await driver.listManaged().catch(() => [])) await driver.remove(container.id).catch(() => {});
  await driver.close().catch(() => {});
  for (const cleanup of cleanups.reverse()) cleanup();
  say("stopped; nothing left running");
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
