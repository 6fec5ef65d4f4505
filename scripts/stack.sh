#!/usr/bin/env bash
# Runs docker-compose.yml: `stack.sh up` starts it and waits until nginx answers;
# `stack.sh down` stops it and removes the per-user MCP containers the gateways started
# (Compose does not know them: the gateways create them through the Docker API).
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=${COMPOSE_PROJECT_NAME:-mcp-broker}
if docker compose version >/dev/null 2>&1; then compose=(docker compose -p "$PROJECT"); else compose=(docker-compose -p "$PROJECT"); fi
port=${BROKER_PORT:-8080}

case "${1:-}" in
  up)
    "${compose[@]}" up -d --no-build
    for _ in $(seq 1 90); do
      curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
      sleep 1
    done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { "${compose[@]}" ps; "${compose[@]}" logs --tail 30; exit 1; }
    echo "broker up: http://127.0.0.1:$port/mcp  dashboard: http://127.0.0.1:${DASHBOARD_PORT:-3001}/admin/queues"
    ;;
  down)
    # Gateways first, so none starts a user's container while they are being removed.
    "${compose[@]}" stop gateway-1 gateway-2 reaper >/dev/null 2>&1 || true
    ids=$(docker ps -aq --filter "label=mcp-broker.deployment=${DEPLOYMENT_NAME:-compose}")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
    "${compose[@]}" down "${@:2}"
    ;;
  *)
    echo "usage: $0 up|down [compose down options]" >&2
    exit 2
    ;;
esac
