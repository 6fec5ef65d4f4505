// Sums the jest results every workspace wrote (`jest --json --outputFile=.jest-results.json`,
// and `.jest-results-<pass>.json` for a further pass, as test/e2e runs its Swarm suite apart)
// into one closing line that CI reads: `tests: N passed, N failed`.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
// Workspace patterns are `folder/*` or a plain folder (see package.json).
const dirs = workspaces.flatMap((pattern) =>
  pattern.endsWith("/*")
    ? readdirSync(join(root, pattern.slice(0, -2))).map((name) => join(pattern.slice(0, -2), name))
    : [pattern],
);

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const dir of dirs) {
  const manifest = join(root, dir, "package.json");
  if (!existsSync(manifest) || !JSON.parse(readFileSync(manifest, "utf8")).scripts?.test) continue;
  // `.jest-results.json`, and `.jest-results-<pass>.json` from a workspace that runs jest more than once.
  const files = readdirSync(join(root, dir)).filter((name) => /^\.jest-results(-[\w-]+)?\.json$/.test(name));
  if (!files.includes(".jest-results.json")) {
    missing.push(dir);
    continue;
  }
  for (const name of files) {
    const result = JSON.parse(readFileSync(join(root, dir, name), "utf8"));
    passed += result.numPassedTests;
    failed += result.numFailedTests + result.numRuntimeErrorTestSuites;
    skipped += result.numPendingTests + result.numTodoTests;
  }
}
for (const dir of missing) console.log(`no test results from ${dir} (its suite did not run to the end)`);
failed += missing.length;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
