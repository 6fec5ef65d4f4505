#!/usr/bin/env bash
# Runs docker-compose.yml + deploy/swarm.yml as a Swarm stack (README, "Running it on a swarm").
#   swarm.sh up     makes this engine a one-node swarm manager if it is in no swarm (and
#                   remembers that it did), creates the stack's secrets, deploys the stack and
#                   waits until the balancer answers. Builds nothing: images come from
#                   scripts/images.sh (one node) or a registry every node can pull from.
#   swarm.sh down   removes the stack, the per-user services the gateways started (the stack does
#                   not know them: the gateways create them through the Engine API), its networks
#                   and secrets, and leaves the swarm if `up` made it.
# Reads .env as stack.sh's Compose does (docker stack deploy does not).
set -euo pipefail
cd "$(dirname "$0")/.."
# As Compose does: a variable already set in the environment wins over .env's line for it.
if [ -f .env ]; then
  while IFS='=' read -r name value; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [ -n "${!name+x}" ] || export "$name=$value"
  done <.env
fi
export STACK_NAME=${STACK_NAME:-mcp-broker}
export DEPLOYMENT_NAME=${DEPLOYMENT_NAME:-swarm}
export BACKEND_NETWORK=${BACKEND_NETWORK:-mcp-broker-swarm-backends}
# The warm pool is tested with the Docker and process drivers only: off on a swarm unless asked for.
export WARM_POOL_SIZE=${WARM_POOL_SIZE:-0}
port=${BROKER_PORT:-8080}
# What `up` changed on the engine, for `down` to undo: one file per stack, outside the checkout
# (another worktree's `down` of the same engine must find it too).
state="${TMPDIR:-/tmp}/mcp-broker-swarm-$STACK_NAME.state"
SECRETS=(key_hash_secret session_secret dashboard_password)

log() { printf '[swarm] %s\n' "$*" >&2; }

join_swarm() {
  local node_state
  node_state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  [ "$node_state" = active ] && return 0
  [ "$node_state" = inactive ] || { log "this engine's swarm state is $node_state"; exit 1; }
  # Joining creates docker_gwbridge and leaving keeps it: down removes it only if it was not there.
  local bridge=kept
  docker network inspect docker_gwbridge >/dev/null 2>&1 || bridge=made
  docker swarm init --advertise-addr "${SWARM_ADVERTISE_ADDR:-127.0.0.1}" >/dev/null
  echo "initialized gwbridge=$bridge" >"$state"
  log "this engine is now a one-node swarm (swarm.sh down leaves it again)"
}

# Swarm secrets from .env's values, or random ones; a secret exists once and is never replaced.
create_secrets() {
  local name value
  for name in "${SECRETS[@]}"; do
    docker secret inspect "${STACK_NAME}_$name" >/dev/null 2>&1 && continue
    value=$(printenv "${name^^}" || true)
    if [ -z "$value" ]; then
      value=$(openssl rand -hex 24)
      # The only moment an operator can learn a generated password: secrets cannot be read back.
      [ "$name" != dashboard_password ] || log "dashboard password (user ${DASHBOARD_USER:-admin}): $value"
    fi
    printf '%s' "$value" | docker secret create --label "mcp-broker.stack=$STACK_NAME" "${STACK_NAME}_$name" - >/dev/null
  done
}

up() {
  join_swarm
  create_secrets
  # docker-compose.yml puts these variables' values into each service's environment, where any
  # `docker service inspect` shows them: past this point only the secrets carry them (X_FILE wins).
  unset KEY_HASH_SECRET SESSION_SECRET DASHBOARD_PASSWORD
  # Redis's own command line needs its password (requirepass): from .env, else a random one for
  # this deployment. Unlike the secrets above it is visible in `docker service inspect redis`.
  export REDIS_PASSWORD=${REDIS_PASSWORD:-$(openssl rand -hex 24)}
  # --resolve-image never: local tags (mcp-broker/*:local) are not looked up on Docker Hub; with a
  # registry, set SWARM_RESOLVE_IMAGE=always so every node runs the same digest.
  docker stack deploy --resolve-image "${SWARM_RESOLVE_IMAGE:-never}" \
    -c docker-compose.yml -c deploy/swarm.yml "$STACK_NAME" >/dev/null
  for _ in $(seq 1 120); do
    # /ready is internal (the balancer refuses it publicly): a gateway's JSON 401 for a keyless
    # POST through the balancer says a ready replica answers.
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/mcp")" = 401 ] && break
    sleep 1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/mcp")" = 401 ] || {
    docker stack ps --no-trunc "$STACK_NAME" >&2
    exit 1
  }
  echo "broker up on a swarm: http://127.0.0.1:$port/mcp  dashboard: http://127.0.0.1:${DASHBOARD_PORT:-3001}/admin/queues"
}

# Removes a network, retrying while the engine still detaches tasks from it (a few seconds); one
# already gone (docker stack rm removes its own, asynchronously) is done.
remove_network() {
  for _ in $(seq 1 60); do
    docker network inspect "$1" >/dev/null 2>&1 || return 0
    docker network rm "$1" >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "could not remove network $1"
  return 1
}

down() {
  # Services and secrets exist only on a manager: on an engine in no swarm (down run twice) there
  # are none left to remove.
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
    # Gateways first, so none starts a user's service while they are being removed.
    docker service scale -d "${STACK_NAME}_gateway=0" >/dev/null 2>&1 || true
    docker service ls -q --filter "label=mcp-broker.deployment=$DEPLOYMENT_NAME" | xargs -r docker service rm >/dev/null
    docker stack rm "$STACK_NAME" >/dev/null 2>&1 || true
    local network secret
    for network in $(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK_NAME") "$BACKEND_NETWORK"; do
      remove_network "$network"
    done
    for secret in $(docker secret ls -q --filter "label=mcp-broker.stack=$STACK_NAME"); do
      # Refused while a service being removed still names it.
      for _ in $(seq 1 30); do docker secret rm "$secret" >/dev/null 2>&1 && break || sleep 1; done
    done
  fi
  if [ -f "$state" ]; then
    docker swarm leave --force >/dev/null
    if grep -q gwbridge=made "$state"; then remove_network docker_gwbridge; fi
    rm -f "$state"
    log "left the swarm swarm.sh up had made"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
