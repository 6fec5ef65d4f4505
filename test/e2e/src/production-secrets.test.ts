import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const app = (name: string) => fileURLToPath(new URL(`../../../apps/${name}/dist/main.js`, import.meta.url));

/** Runs a built service with `env` only; resolves with its exit code and everything it printed. */
async function exitOf(name: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  const child = spawn(process.execPath, [app(name)], { env: { PATH: process.env.PATH, ...env }, stdio: "pipe" });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk) => {
    output += chunk;
  });
  const [code] = await once(child, "exit");
  return { code, output };
}

/** NODE_ENV=production (docker-compose.yml's default) refuses to start on a demo or missing secret. */
describe("production mode", () => {
  it("the gateway exits 2 naming the demo KEY_HASH_SECRET and SESSION_SECRET", async () => {
    const { code, output } = await exitOf("gateway", {
      NODE_ENV: "production",
      KEY_HASH_SECRET: "change-me-please-0123456789",
      SESSION_SECRET: "demo-session-secret-0123",
      AUTH_VERIFY: "off",
      REDIS_URL: "redis://127.0.0.1:1",
    });
    expect(code).toBe(2);
    expect(output).toContain("KEY_HASH_SECRET: is a demo value");
    expect(output).toContain("SESSION_SECRET: is a demo value");
  });

  it("the gateway exits 2 without AUTH_VERIFY_URL unless AUTH_VERIFY=off", async () => {
    const { code, output } = await exitOf("gateway", {
      KEY_HASH_SECRET: "a-real-secret-8c1f0e9d2b",
      REDIS_URL: "redis://127.0.0.1:1",
    });
    expect(code).toBe(2);
    expect(output).toContain("AUTH_VERIFY_URL: is required (or set AUTH_VERIFY=off");
  });

  it("the reaper exits 2 naming a missing or demo DASHBOARD_PASSWORD", async () => {
    const missing = await exitOf("reaper", { NODE_ENV: "production", REDIS_URL: "redis://127.0.0.1:1" });
    expect(missing.code).toBe(2);
    expect(missing.output).toContain("DASHBOARD_PASSWORD: is missing");
    const demo = await exitOf("reaper", {
      NODE_ENV: "production",
      DASHBOARD_PASSWORD: "change-me-too",
      REDIS_URL: "redis://127.0.0.1:1",
    });
    expect(demo.code).toBe(2);
    expect(demo.output).toContain("DASHBOARD_PASSWORD: is a demo value");
  });
});
