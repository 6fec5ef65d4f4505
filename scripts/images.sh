#!/usr/bin/env bash
# Builds every image the tests, benchmarks and the dev stack use, with no registry needed.
#   mcp-broker/node-base:local     official node:22-slim when it can be pulled, else a root
#                                  filesystem assembled from this host's node binary
#   mcp-broker/redis:local         official redis:7 when it can be pulled, else host redis-server
#   mcp-broker/outline-stub:local  apps/outline-stub/Dockerfile on the node base
# Idempotent: base images are made once (FORCE=1 remakes them); app images are rebuilt each run
# (Docker's layer cache makes an unchanged rebuild take about a second).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_BASE=${NODE_BASE_IMAGE:-mcp-broker/node-base:local}
REDIS_BASE=${REDIS_IMAGE:-mcp-broker/redis:local}
STUB=${STUB_IMAGE:-mcp-broker/outline-stub:local}

log() { printf '[images] %s\n' "$*" >&2; }

docker info >/dev/null 2>&1 || { log "no Docker engine answers (is dockerd running?)"; exit 1; }

have() { docker image inspect "$1" >/dev/null 2>&1; }

# Copies a binary and every shared library it links into a root filesystem.
add_binary() {
  local root=$1 bin=$2
  install -D -m 0755 "$(readlink -f "$bin")" "$root$bin"
  ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# A minimal root filesystem: /etc/passwd with a non-root user (uid 1000), /tmp, CA certificates.
new_root() {
  local root
  root=$(mktemp -d)
  mkdir -p "$root"/{etc,tmp,app,data,home/app}
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\napp:x:1000:\n' >"$root/etc/group"
  chown 1000:1000 "$root/data" "$root/home/app"
  if [ -d /etc/ssl/certs ]; then mkdir -p "$root/etc/ssl" && cp -rL /etc/ssl/certs "$root/etc/ssl/"; fi
  echo "$root"
}

import_root() {
  local root=$1 tag=$2; shift 2
  tar -C "$root" -c . | docker import "$@" - "$tag" >/dev/null
  rm -rf "$root"
}

try_pull() { timeout 120 docker pull -q "$1" >/dev/null 2>&1 && docker tag "$1" "$2"; }

if have "$NODE_BASE" && [ -z "${FORCE:-}" ]; then
  log "$NODE_BASE present"
elif try_pull node:22-slim "$NODE_BASE"; then
  log "$NODE_BASE <- node:22-slim"
else
  root=$(new_root)
  add_binary "$root" "$(command -v node)"
  mkdir -p "$root/usr/bin" && [ -e "$root/usr/bin/node" ] || ln -s "$(readlink -f "$(command -v node)")" "$root/usr/bin/node"
  import_root "$root" "$NODE_BASE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /app' --change 'CMD ["node"]'
  log "$NODE_BASE <- host node $(node --version)"
fi

if have "$REDIS_BASE" && [ -z "${FORCE:-}" ]; then
  log "$REDIS_BASE present"
elif try_pull redis:7 "$REDIS_BASE"; then
  log "$REDIS_BASE <- redis:7"
else
  command -v redis-server >/dev/null || { log "redis-server not on PATH: apt-get install -y redis-server"; exit 1; }
  root=$(new_root)
  add_binary "$root" "$(command -v redis-server)"
  import_root "$root" "$REDIS_BASE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /data' --change 'USER 1000:1000' \
    --change 'EXPOSE 6379' --change 'CMD ["redis-server", "--protected-mode", "no"]'
  log "$REDIS_BASE <- host $(redis-server --version | cut -d' ' -f3)"
fi

[ -f apps/outline-stub/dist/bundle/server.mjs ] || npm run build -w @mcp-broker/outline-stub >/dev/null
docker build -q --build-arg NODE_IMAGE="$NODE_BASE" -t "$STUB" apps/outline-stub >/dev/null 2>&1 || docker build --build-arg NODE_IMAGE="$NODE_BASE" -t "$STUB" apps/outline-stub
log "$STUB built"
