#!/usr/bin/env bash
# Builds every image the tests, benchmarks and the dev stack use, with no registry needed.
#   mcp-broker/node-base:local     official node:24-slim when it can be pulled, else a root
#                                  filesystem assembled from this host's node binary
#   mcp-broker/redis:local         official redis:7 when it can be pulled, else host redis-server
#   mcp-broker/nginx:local         official nginx when it can be pulled, else host nginx
#                                  (the Docker socket proxy)
#   mcp-broker/haproxy:local       official haproxy:2.6 when it can be pulled, else host haproxy
#                                  (the load balancer)
#   mcp-broker/prometheus:local    official prom/prometheus when it can be pulled, else Debian's
#                                  host prometheus (the `observability` Compose profile); skipped
#                                  with a note when neither is there, as that profile is optional
#   mcp-broker/outline-stub:local  apps/outline-stub/Dockerfile on the node base
#   mcp-broker/conformance-backend:local  the same with STUB_TOOLS=conformance (the MCP
#                                  conformance suite's server, for test/e2e conformance.test.ts)
#   mcp-broker/gateway:local       Dockerfile (APP=gateway) on the node base
#   mcp-broker/reaper:local        Dockerfile (APP=reaper) on the node base
#   mcp-broker/engine-guard:local  Dockerfile (APP=engine-guard) on the node base (container control)
# SKIP_APP_IMAGES=1 stops after the outline-stub image (what `npm run dev` needs).
# Idempotent: base images are made once (FORCE=1 remakes them); app images are rebuilt each run
# (Docker's layer cache makes an unchanged rebuild take about a second).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_BASE=${NODE_BASE_IMAGE:-mcp-broker/node-base:local}
REDIS_BASE=${REDIS_IMAGE:-mcp-broker/redis:local}
NGINX_BASE=${NGINX_IMAGE:-mcp-broker/nginx:local}
HAPROXY_BASE=${HAPROXY_IMAGE:-mcp-broker/haproxy:local}
PROMETHEUS_BASE=${PROMETHEUS_IMAGE:-mcp-broker/prometheus:local}
STUB=${STUB_IMAGE:-mcp-broker/outline-stub:local}
CONFORMANCE=${CONFORMANCE_IMAGE:-mcp-broker/conformance-backend:local}

log() { printf '[images] %s\n' "$*" >&2; }

docker info >/dev/null 2>&1 || { log "no Docker engine answers (is dockerd running?)"; exit 1; }

have() { docker image inspect "$1" >/dev/null 2>&1; }
# Bumped when what the host-built base holds changes, so an older local base is rebuilt.
BASE_REVISION=4
base_current() {
  [ "$(docker image inspect --format '{{ index .Config.Labels "mcp-broker.base" }}' "$1" 2>/dev/null)" = "$BASE_REVISION" ]
}

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

# The host-built Node base carries the Node that runs the tests (the host step's Node 24).
node_current() {
  base_current "$1" &&
    [ "$(docker image inspect --format '{{ index .Config.Labels "mcp-broker.node" }}' "$1" 2>/dev/null)" = "$(node --version)" ]
}
if node_current "$NODE_BASE" && [ -z "${FORCE:-}" ]; then
  log "$NODE_BASE present"
elif try_pull node:24-slim "$NODE_BASE"; then
  log "$NODE_BASE <- node:24-slim"
else
  root=$(new_root)
  add_binary "$root" "$(command -v node)"
  mkdir -p "$root/usr/bin" && [ -e "$root/usr/bin/node" ] || ln -s "$(readlink -f "$(command -v node)")" "$root/usr/bin/node"
  # npm too (and env, its shebang), so Dockerfiles can install production dependencies in a build stage.
  add_binary "$root" /usr/bin/env
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  mkdir -p "$root/usr/lib/node_modules" && cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  import_root "$root" "$NODE_BASE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /app' --change 'CMD ["node"]' \
    --change "LABEL mcp-broker.base=$BASE_REVISION" --change "LABEL mcp-broker.node=$(node --version)"
  log "$NODE_BASE <- host node $(node --version)"
fi

if base_current "$REDIS_BASE" && [ -z "${FORCE:-}" ]; then
  log "$REDIS_BASE present"
elif try_pull redis:7 "$REDIS_BASE" && [ -z "${FORCE:-}" ]; then
  log "$REDIS_BASE <- redis:7"
else
  command -v redis-server >/dev/null || { log "redis-server not on PATH: apt-get install -y redis-server"; exit 1; }
  root=$(new_root)
  add_binary "$root" "$(command -v redis-server)"
  add_binary "$root" "$(command -v redis-cli)" # for health checks
  import_root "$root" "$REDIS_BASE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /data' --change 'USER 1000:1000' \
    --change 'EXPOSE 6379' --change 'CMD ["redis-server", "--protected-mode", "no"]' \
    --change "LABEL mcp-broker.base=$BASE_REVISION"
  log "$REDIS_BASE <- host $(redis-server --version | cut -d' ' -f3)"
fi

# App images need the apps built on the host first (their dist/ folders are copied in).
[ -f apps/outline-stub/dist/bundle/server.mjs ] && [ -f apps/gateway/dist/main.js ] && [ -f apps/reaper/dist/main.js ] && [ -f apps/engine-guard/dist/main.js ] \
  || npm run build >/dev/null
build() { # tag, context, extra args...
  local tag=$1 context=$2; shift 2
  docker build -q "$@" -t "$tag" "$context" >/dev/null 2>&1 || docker build "$@" -t "$tag" "$context"
  log "$tag built"
}
# Where the npm registry sits behind a TLS-intercepting proxy, npm inside the build needs the
# host's CA bundle; the host-built base image carries /etc/ssl/certs.
cafile=$(npm config get cafile 2>/dev/null | grep '^/' || true)
# The Node 24 that scripts/with-node.sh puts first has an npm of its own, which does not read the
# system's global npmrc: fall back to the bundle Node itself is told to trust.
if [ -z "$cafile" ]; then
  case "${NODE_EXTRA_CA_CERTS:-}" in /etc/ssl/certs/*) cafile=$NODE_EXTRA_CA_CERTS ;; esac
fi
build "$STUB" apps/outline-stub --build-arg NODE_IMAGE="$NODE_BASE"
# The same bundle serving the MCP conformance suite's tools (test/e2e conformance.test.ts).
build "$CONFORMANCE" apps/outline-stub --build-arg NODE_IMAGE="$NODE_BASE" --build-arg STUB_TOOLS=conformance
# `npm run dev` runs the gateway and reaper on the host and needs no images of them, nor the
# Compose stack's nginx and HAProxy.
[ -n "${SKIP_APP_IMAGES:-}" ] && exit 0

if base_current "$NGINX_BASE" && [ -z "${FORCE:-}" ]; then
  log "$NGINX_BASE present"
elif try_pull nginx:1.27 "$NGINX_BASE"; then
  log "$NGINX_BASE <- nginx:1.27"
else
  command -v nginx >/dev/null || { log "nginx not on PATH: apt-get install -y nginx"; exit 1; }
  root=$(new_root)
  add_binary "$root" "$(command -v nginx)"
  mkdir -p "$root/etc/nginx" "$root/var/log/nginx" "$root/var/lib/nginx" "$root/run"
  cp /etc/nginx/mime.types "$root/etc/nginx/"
  chown -R 1000:1000 "$root/var/log/nginx" "$root/var/lib/nginx" "$root/run"
  import_root "$root" "$NGINX_BASE" \
    --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/bin' \
    --change 'CMD ["nginx", "-g", "daemon off;"]' --change "LABEL mcp-broker.base=$BASE_REVISION"
  log "$NGINX_BASE <- host $(nginx -v 2>&1 | cut -d' ' -f3)"
fi

if base_current "$HAPROXY_BASE" && [ -z "${FORCE:-}" ]; then
  log "$HAPROXY_BASE present"
elif try_pull haproxy:2.6 "$HAPROXY_BASE"; then
  log "$HAPROXY_BASE <- haproxy:2.6"
else
  # Debian installs it in /usr/sbin, which is not on every user's PATH.
  haproxy_bin=$(PATH="$PATH:/usr/sbin" command -v haproxy || true)
  [ -n "$haproxy_bin" ] || { log "haproxy not installed: apt-get install -y haproxy"; exit 1; }
  root=$(new_root)
  add_binary "$root" "$haproxy_bin"
  mkdir -p "$root/usr/local/etc/haproxy"
  # Same layout as the official image (config in /usr/local/etc/haproxy), as a non-root user.
  # `docker import` cannot set STOPSIGNAL: docker-compose.yml sets SIGUSR1, HAProxy's soft stop.
  import_root "$root" "$HAPROXY_BASE" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/bin' --change 'USER 1000:1000' \
    --change 'EXPOSE 8080' \
    --change 'CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
    --change "LABEL mcp-broker.base=$BASE_REVISION"
  log "$HAPROXY_BASE <- host haproxy $("$haproxy_bin" -v | head -n 1 | cut -d' ' -f3)"
fi

if base_current "$PROMETHEUS_BASE" && [ -z "${FORCE:-}" ]; then
  log "$PROMETHEUS_BASE present"
elif try_pull prom/prometheus:v2.53.0 "$PROMETHEUS_BASE"; then
  log "$PROMETHEUS_BASE <- prom/prometheus:v2.53.0"
elif command -v prometheus >/dev/null; then
  root=$(new_root)
  add_binary "$root" "$(command -v prometheus)"
  mkdir -p "$root/etc/prometheus" "$root/prometheus"
  chown 1000:1000 "$root/prometheus"
  # Same paths as the official image: config in /etc/prometheus, data in /prometheus.
  import_root "$root" "$PROMETHEUS_BASE" \
    --change 'ENV PATH=/usr/bin:/bin' --change 'USER 1000:1000' --change 'EXPOSE 9090' \
    --change 'WORKDIR /prometheus' \
    --change 'ENTRYPOINT ["prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
    --change "LABEL mcp-broker.base=$BASE_REVISION"
  log "$PROMETHEUS_BASE <- host prometheus $(prometheus --version 2>&1 | head -n 1 | cut -d' ' -f3)"
else
  log "no prometheus image and no host prometheus: the observability profile is unavailable (apt-get install -y prometheus)"
fi

for app in gateway reaper engine-guard; do
  build "mcp-broker/$app:local" . --build-arg NODE_IMAGE="$NODE_BASE" --build-arg APP=$app \
    ${cafile:+--build-arg NPM_CAFILE=$cafile}
done
