#!/usr/bin/env bash
# Runs a command with the Node that the host step provided first on PATH (.host/node, present
# when the system Node is end-of-life), so node, npx and everything they start use it.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$root/.host/node/bin/node" ]; then export PATH="$root/.host/node/bin:$PATH"; fi
exec "$@"
