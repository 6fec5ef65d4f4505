import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const require = createRequire(import.meta.url);
/** The suite's CLI (`conformance server`), from the installed package. */
const CLI = join(dirname(require.resolve("@modelcontextprotocol/conformance/package.json")), "dist/index.js");

export interface ScenarioResult {
  passed: number;
  failed: number;
  /** `check id: message` of each failed check. */
  failures: string[];
}

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  errorMessage?: string;
}

/**
 * Runs the official server suite (its active scenarios, one after another, or one scenario)
 * against an MCP endpoint, and reads each scenario's checks.json. A failing suite exits 1; its
 * results count.
 */
export async function runConformance(
  url: string,
  timeoutMs: number,
  scenario?: string,
): Promise<Map<string, ScenarioResult>> {
  const out = mkdtempSync(join(tmpdir(), "mcpb-conformance-"));
  const only = scenario ? ["--scenario", scenario] : [];
  try {
    await run(process.execPath, [CLI, "server", "--url", url, "-o", out, ...only], { timeout: timeoutMs }).catch(
      (error) => {
        if (error.code !== 1) throw error;
      },
    );
    const results = new Map<string, ScenarioResult>();
    for (const folder of readdirSync(out)) {
      // `server-<scenario>-<ISO time with dashes>`
      const scenario = folder.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, "");
      const checks = JSON.parse(readFileSync(join(out, folder, "checks.json"), "utf8")) as Check[];
      const failed = checks.filter((check) => check.status === "FAILURE");
      results.set(scenario, {
        passed: checks.filter((check) => check.status === "SUCCESS").length,
        failed: failed.length,
        failures: failed.map((check) => `${check.id}: ${check.errorMessage ?? ""}`),
      });
    }
    return results;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
