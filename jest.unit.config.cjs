// `npm run test:unit`: every workspace's in-process tests (`*.unit.test.ts`, and the whole of
// service-runtime, which needs nothing but Node) in one jest run. No Docker engine; Redis is a
// `redis-server` from PATH. One run instead of one per workspace: each jest start costs about a
// second of CPU, and one scheduler spreads the slow suites over the workers.
const path = require("node:path");
const preset = require("./jest.preset.cjs");

const workspaces = [
  "apps/gateway",
  "apps/engine-guard",
  "apps/reaper",
  "packages/container-manager",
  "packages/service-runtime",
  "packages/session-store",
];

module.exports = {
  ...preset,
  rootDir: __dirname,
  roots: workspaces.map((workspace) => path.join(__dirname, workspace, "src")),
  testMatch: ["**/*.unit.test.ts", "**/packages/service-runtime/src/**/*.test.ts"],
  // The suites mostly wait on sockets and timers: more workers than cores keeps both cores busy.
  maxWorkers: 4,
};
