// One jest preset for every workspace: TypeScript through SWC (no TypeScript JS API needed),
// workspace packages resolved to their sources so tests never run against a stale build.
const path = require("node:path");

const root = __dirname;
const workspaces = {
  "@mcp-broker/service-runtime": "packages/service-runtime/src/index.ts",
  "@mcp-broker/session-store": "packages/session-store/src/index.ts",
  "@mcp-broker/container-manager": "packages/container-manager/src/index.ts",
  "@mcp-broker/container-manager/docker": "packages/container-manager/src/docker-index.ts",
  "@mcp-broker/test-support": "test/support/src/index.ts",
  "@mcp-broker/test-support/docker": "test/support/src/docker-index.ts",
  "@mcp-broker/outline-stub": "apps/outline-stub/src/index.ts",
  "@mcp-broker/gateway": "apps/gateway/src/index.ts",
  "@mcp-broker/reaper": "apps/reaper/src/index.ts",
  "@mcp-broker/engine-guard": "apps/engine-guard/src/index.ts",
};

module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/src"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": [
      "@swc/jest",
      { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } },
    ],
    // ESM-only dependencies (eventsource-parser 4): jest runs tests as CommonJS, and loads ESM
    // with require() only under --experimental-vm-modules, so SWC turns them into CommonJS too.
    "^.+\\.js$": ["@swc/jest", { jsc: { target: "es2022" }, module: { type: "commonjs" } }],
  },
  transformIgnorePatterns: ["/node_modules/(?!eventsource-parser/)"],
  moduleNameMapper: {
    ...Object.fromEntries(Object.entries(workspaces).map(([name, file]) => [`^${name}$`, path.join(root, file)])),
    "^(\\.{1,2}/.*)\\.js$": "$1",
  },
  setupFiles: [path.join(root, "test/support/src/env.cjs")],
  testTimeout: 60_000,
  // Containers and servers started by a test file are stopped in its afterAll; this catches leaks loudly.
  openHandlesTimeout: 5_000,
  // ...and a leak that slipped through (a library's connection left reconnecting after a failed
  // test: seen in CI) must not hold the run until CI's timeout: jest exits when the tests are done.
  forceExit: true,
};
