import { readFileSync } from "node:fs";
import { ENGINE_GUARD_VARIABLES } from "@mcp-broker/engine-guard";
import { GATEWAY_VARIABLES, loadConfig } from "@mcp-broker/gateway";
import { REAPER_VARIABLES } from "@mcp-broker/reaper";

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), "utf8");

describe("docs match the code", () => {
  const variables = [...new Set([...GATEWAY_VARIABLES, ...REAPER_VARIABLES, ...ENGINE_GUARD_VARIABLES])];

  it("lists every configuration variable in the README's table and in .env.example", () => {
    const readme = read("README.md");
    const example = read(".env.example");
    const tableRows = new Set([...readme.matchAll(/^\| `([A-Z_]+)` +\|/gm)].map((match) => match[1]));
    const exampleNames = new Set([...example.matchAll(/^#? ?([A-Z][A-Z_]+)=/gm)].map((match) => match[1]));
    expect(variables.length).toBeGreaterThan(40);
    expect(variables.filter((name) => !tableRows.has(name))).toEqual([]);
    expect(variables.filter((name) => !exampleNames.has(name))).toEqual([]);
    // …and nothing documented that the code does not read (DOCKER_HOST is read by dockerode).
    expect([...tableRows].filter((name) => !variables.includes(name as string) && name !== "DOCKER_HOST")).toEqual([]);
  });

  it("reports every invalid variable at once, by name", () => {
    let problems: string[] = [];
    try {
      loadConfig({ PORT: "http", BACKEND_DRIVER: "kubernetes", REDIS_URL: "localhost" });
    } catch (error) {
      problems = (error as { problems: string[] }).problems.map((problem) => problem.split(":")[0] as string);
    }
    expect(problems.sort()).toEqual(["BACKEND_DRIVER", "KEY_HASH_SECRET", "PORT", "REDIS_URL"]);
  });
});
