#!/usr/bin/env bash
# The host step: makes sure this machine has every system part a project command needs, and
# that it runs. `npm test` and `npm run dev` call it first (package.json `pretest`/`predev`);
# CI runs nothing else that installs.
#
#   bash scripts/host.sh test   Docker engine (running), Compose, redis-server, nginx, haproxy, Node 24
#   bash scripts/host.sh dev    Node 24; a Docker engine and redis-server where they can be had
#                               (NO_DOCKER=1: redis-server only, backends run as processes)
#
# Missing Debian/Ubuntu packages are installed with apt when this runs as root (or with
# passwordless sudo); otherwise it prints, per missing part, the exact command to run and exits 1.
# Node: when the system Node is older than 22, the Node 24 LTS binary from the npm registry's
# `node-linux-<arch>` package is unpacked into .host/node (nothing outside the repository), and
# the project's scripts run on it (scripts/with-node.sh). It never touches what is already
# installed and running, and takes well under 2 s when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
NODE_VERSION=24.22.3 # Node 24 LTS ("Krypton"); bump together with the Dockerfile's base

say() { printf '[host] %s\n' "$*" >&2; }

as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(none); fi
fi
can_apt() { [ "${as_root[0]:-}" != none ] && command -v apt-get >/dev/null; }

# --- system packages --------------------------------------------------------------------
compose_ok() { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; }
compose_package() {
  # Debian ships Compose v1 as `docker-compose`; Ubuntu (and Docker's own repository) the v2 plugin.
  if apt-cache show docker-compose-v2 >/dev/null 2>&1; then echo docker-compose-v2; else echo docker-compose; fi
}

packages=()
want_docker=0
case "$mode" in
  test) want_docker=1 ;;
  dev) [ -n "${NO_DOCKER:-}" ] || want_docker=1 ;;
  *) say "usage: $0 test|dev" && exit 2 ;;
esac
if [ "$want_docker" = 1 ] && ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
  packages+=(docker.io)
fi
if [ "$mode" = test ]; then
  compose_ok || packages+=(COMPOSE)
  # The in-process tests start redis-server from PATH; the tests' and benchmarks' Redis, nginx
  # and HAProxy (the Compose stack's balancer) images are assembled from host binaries when no
  # registry answers.
  command -v redis-server >/dev/null || packages+=(redis-server)
  command -v nginx >/dev/null || packages+=(nginx)
  # Debian puts haproxy in /usr/sbin, which is not on every user's PATH.
  PATH="$PATH:/usr/sbin" command -v haproxy >/dev/null || packages+=(haproxy)
  # The operator view's end-to-end test drives a real headless browser (test/e2e operator.test.ts).
  command -v chromium >/dev/null || packages+=(chromium)
elif [ -z "${REDIS_URL:-}" ]; then
  # dev: Redis runs as redis-server, or in a container whose image is assembled from it.
  command -v redis-server >/dev/null || packages+=(redis-server)
fi

if ((${#packages[@]})); then
  if can_apt; then
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    resolved=()
    for p in "${packages[@]}"; do if [ "$p" = COMPOSE ]; then resolved+=("$(compose_package)"); else resolved+=("$p"); fi; done
    say "installing ${resolved[*]} (apt)"
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${resolved[@]}" >/dev/null
    # Debian starts packaged services on install; this project starts its own, on free ports.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      "${as_root[@]}" systemctl disable --now nginx redis-server haproxy >/dev/null 2>&1 || true
    fi
  else
    say "missing system parts, and this user cannot install them; run:"
    for p in "${packages[@]}"; do
      case "$p" in
        COMPOSE) say "  sudo apt-get install -y docker-compose   # or docker-compose-v2 / docker-compose-plugin" ;;
        *) say "  sudo apt-get install -y $p" ;;
      esac
    done
    [ "$mode" = dev ] && say "or run without Docker: NO_DOCKER=1 npm run dev (needs redis-server, or REDIS_URL)"
    exit 1
  fi
fi

# --- Docker engine ----------------------------------------------------------------------
if [ "$want_docker" = 1 ] && ! docker info >/dev/null 2>&1; then
  if [ "${as_root[0]:-}" = none ] || ! command -v dockerd >/dev/null; then
    say "no Docker engine answers; start it (sudo systemctl start docker, or sudo dockerd &)"
    [ "$mode" = dev ] && say "or run without Docker: NO_DOCKER=1 npm run dev"
    exit 1
  fi
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    "${as_root[@]}" systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    log=/var/log/mcp-broker-dockerd.log
    say "starting dockerd (log: $log)"
    "${as_root[@]}" sh -c "nohup dockerd >>$log 2>&1 &"
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -n 20 "$log" >&2; say "dockerd did not start"; exit 1; }
  fi
fi

# --- Node 24 ----------------------------------------------------------------------------
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 22 ] && [ -z "${HOST_SYSTEM_NODE:-}" ]; then
  dir=.host/node
  if [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
    case "$(uname -m)" in
      x86_64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) say "system Node $(node --version) is end-of-life; install Node >= 22 for $(uname -m)"; exit 1 ;;
    esac
    say "system Node $(node --version) is end-of-life: fetching node-linux-$arch@$NODE_VERSION into $dir"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null)
    rm -rf "$dir" && mkdir -p "$dir"
    tar -xzf "$tmp"/node-linux-*.tgz -C "$dir" --strip-components=1 package/bin package/LICENSE
    rm -rf "$tmp"
  fi
  # npm finds its global config next to the node that runs it: point .host/node's at the
  # system's, so npm under Node 24 keeps the machine's registry and CA settings.
  if [ ! -e "$dir/etc/npmrc" ]; then
    system_npmrc=$(npm config get globalconfig 2>/dev/null || true)
    if [ -f "$system_npmrc" ]; then mkdir -p "$dir/etc" && ln -s "$system_npmrc" "$dir/etc/npmrc"; fi
  fi
fi
exit 0
