#!/usr/bin/env bash
# Runs docker-compose.yml.
#   stack.sh up            starts it with GATEWAY_REPLICAS gateways (default 2), waits until the
#                          balancer answers
#   stack.sh scale N       adds or removes gateway replicas while it runs (the balancer finds new
#                          ones by DNS within seconds; removed ones drain first)
#   stack.sh roll          replaces every gateway replica, one at a time, with a new container from
#                          the current image and settings: the replacement is healthy before the
#                          old one is stopped (and drains), so no call fails and capacity never drops
#   COMPOSE_PROFILES=ha stack.sh up|down   the same with Redis Sentinel (deploy/ha.yml)
#   stack.sh up also adds one iptables rule (root only; BACKEND_FIREWALL=off skips it): see backend_firewall
#   stack.sh down [opts]   stops it and removes the per-user MCP containers (and networks) the gateways started
#                          (Compose does not know them: the gateways create them through the Docker API)
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=${COMPOSE_PROJECT_NAME:-mcp-broker}
# COMPOSE_PROFILES=ha: Redis with a replica and three sentinels (deploy/ha.yml); Compose itself
# reads the variable and starts that file's services.
files=(-f docker-compose.yml)
if [[ ",${COMPOSE_PROFILES:-}," == *,ha,* ]]; then files+=(-f deploy/ha.yml); fi
if [[ ",${COMPOSE_PROFILES:-}," == *,observability,* ]]; then files+=(-f deploy/observability.yml); fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose -p "$PROJECT" "${files[@]}"); else compose=(docker-compose -p "$PROJECT" "${files[@]}"); fi
port=${BROKER_PORT:-8080}
replicas=${GATEWAY_REPLICAS:-2}

# Gateway containers of this project, oldest first.
gateways() {
  docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=gateway" |
    xargs -r docker inspect --format '{{.Created}} {{.Id}}' | sort | cut -d' ' -f2
}
# Waits until the container's own health check (GET /ready) passes.
wait_healthy() {
  for _ in $(seq 1 120); do
    [ "$(docker inspect --format '{{.State.Health.Status}}' "$1")" = healthy ] && return 0
    sleep 0.5
  done
  echo "gateway ${1:0:12} did not become healthy" >&2
  docker logs --tail 30 "$1" >&2
  return 1
}
# NODE_ENV=production refuses demo or missing secrets: the first `up` writes random ones into
# .env (kept, so every replica and every later `roll` shares them); set your own there instead.
ensure_secrets() {
  touch .env
  for name in KEY_HASH_SECRET DASHBOARD_PASSWORD REDIS_PASSWORD; do
    if [ -z "${!name:-}" ] && ! grep -q "^$name=." .env; then
      sed -i "/^$name=\$/d" .env
      echo "$name=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')" >>.env
      echo "stack: wrote a random $name to .env" >&2
    fi
  done
}
scale() { "${compose[@]}" up -d --no-deps --no-recreate --scale "gateway=$1" gateway; }
# Docker 20.10 forwards between bridges for a moment each time it creates or removes a network
# (measured: docs/architecture.md, "Backend isolation"), and per-user networks make one per
# backend. One DOCKER-USER rule (Docker never rewrites that chain) closes the window: new
# connections routed from the backend pool into any bridge are dropped; a backend's own bridge
# (gateways calling it) and the way out (its Outline) are untouched. Needs root and iptables;
# BACKEND_FIREWALL=off skips it.
backend_firewall() {
  [ "${BACKEND_FIREWALL:-on}" = off ] && return 0
  local pool=${BACKEND_NETWORK_POOL:-10.213.0.0/16} bridge able=no
  [ "$(id -u)" = 0 ] && command -v iptables >/dev/null && able=yes
  for bridge in "br+" docker0; do
    local rule=(-s "$pool" -o "$bridge" -m conntrack --ctstate NEW -m physdev ! --physdev-is-bridged -j DROP)
    if [ "$able" = yes ]; then
      iptables -C DOCKER-USER "${rule[@]}" 2>/dev/null || iptables -I DOCKER-USER "${rule[@]}"
    else
      echo "stack: not root (or no iptables): backends are isolated except while Docker creates a network;" \
        "to close that too: iptables -I DOCKER-USER ${rule[*]}" >&2
    fi
  done
  [ "$able" = no ] ||
    echo "stack: DOCKER-USER drops new connections from $pool routed into any bridge (BACKEND_FIREWALL=off skips this)" >&2
}

case "${1:-}" in
  up)
    ensure_secrets
    backend_firewall
    "${compose[@]}" up -d --no-build --scale "gateway=$replicas"
    for _ in $(seq 1 90); do
      curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
      sleep 1
    done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { "${compose[@]}" ps; "${compose[@]}" logs --tail 30; exit 1; }
    # depends_on is a start order only (the list form docker stack deploy reads too): up returns
    # once every replica's own health check (GET /ready: Redis and the engine guard answer) passes.
    for id in $(gateways); do wait_healthy "$id"; done
    echo "broker up: http://127.0.0.1:$port/mcp ($replicas gateways)  dashboard: http://127.0.0.1:${DASHBOARD_PORT:-3001}/admin/queues"
    ;;
  scale)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 scale N (N >= 1)" >&2; exit 2; }
    scale "$2"
    ;;
  roll)
    # A stopped replica of the old version must not be the one Compose starts again.
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=gateway" \
      --filter status=exited --filter status=created | xargs -r docker rm >/dev/null
    old=$(gateways)
    [ -n "$old" ] || { echo "no gateway replica runs" >&2; exit 1; }
    count=$(wc -w <<<"$old")
    for id in $old; do
      # One more replica first (Compose creates it from the current image), healthy before the
      # old one leaves: the balancer sends it traffic within a second of its /ready passing.
      scale $((count + 1))
      new=$(gateways | tail -n 1)
      wait_healthy "$new"
      # docker stop sends SIGTERM: the old replica drains (its /ready turns 503, the balancer
      # stops sending it requests), finishes what it has in flight and exits.
      docker stop "$id" >/dev/null
      docker rm "$id" >/dev/null
      echo "replaced gateway ${id:0:12} with ${new:0:12}"
    done
    ;;
  down)
    # Gateways first, so none starts a user's container while they are being removed.
    "${compose[@]}" stop gateway reaper >/dev/null 2>&1 || true
    ids=$(docker ps -aq --filter "label=mcp-broker.deployment=${DEPLOYMENT_NAME:-compose}")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
    # Their per-user networks (BACKEND_NETWORK=per-user); the stopped gateways hold no endpoints on them.
    nets=$(docker network ls -q --filter "label=mcp-broker.deployment=${DEPLOYMENT_NAME:-compose}")
    [ -z "$nets" ] || docker network rm $nets >/dev/null
    "${compose[@]}" down "${@:2}"
    ;;
  *)
    echo "usage: $0 up|scale N|roll|down [compose down options]" >&2
    exit 2
    ;;
esac
