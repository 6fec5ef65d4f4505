#!/usr/bin/env bash
# The project's test command (`npm test`, after the host step `scripts/host.sh test`): builds, makes the local images, runs every
# workspace's jest suite against real Redis and the real Docker engine, then prints one
# closing line `tests: N passed, N failed` summed over all workspaces.
set -uo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1 TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-true}
echo "[test] node $(node --version), $(docker version --format 'engine {{.Server.Version}}' 2>/dev/null || echo 'no engine')"
rm -f apps/*/.jest-results*.json packages/*/.jest-results*.json test/*/.jest-results*.json

npx turbo run build --output-logs=errors-only || exit 1
bash scripts/images.sh || exit 1
# One workspace at a time: the suites start containers and time SSE progress events, and a
# two-core machine running them all at once measures the machine, not the code.
# Bounded, so a hung suite fails CI instead of eating its time.
timeout 1800 npx turbo run test --concurrency=1 --continue --output-logs=full --ui=stream
status=$?
node scripts/test-summary.mjs || status=1
exit $status
