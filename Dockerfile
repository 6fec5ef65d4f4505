# Production image of one broker app: APP=gateway, APP=reaper or APP=engine-guard.
#   npm run build && docker build --build-arg APP=gateway -t mcp-broker/gateway .
# The apps' dist/ folders come from the host build (`npm run build`); the image installs only
# their production dependencies. NODE_IMAGE is an ARG so a locally built base can stand in where
# no image registry is reachable (scripts/images.sh does that).
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS deps
# Where the registry is reached through a TLS-intercepting proxy, name its CA bundle here.
ARG NPM_CAFILE=
ENV npm_config_cafile=${NPM_CAFILE} npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/service-runtime/package.json packages/service-runtime/
COPY packages/session-store/package.json packages/session-store/
COPY packages/container-manager/package.json packages/container-manager/
COPY apps/gateway/package.json apps/gateway/
COPY apps/reaper/package.json apps/reaper/
COPY apps/engine-guard/package.json apps/engine-guard/
COPY apps/outline-stub/package.json apps/outline-stub/
COPY test/support/package.json test/support/
COPY test/e2e/package.json test/e2e/
# One dependency layer for every app, so building the second image reuses the first's install.
RUN ["npm", "ci", "--omit=dev", "--ignore-scripts", "--workspace", "@mcp-broker/service-runtime", "--workspace", "@mcp-broker/session-store", "--workspace", "@mcp-broker/container-manager", "--workspace", "@mcp-broker/gateway", "--workspace", "@mcp-broker/reaper", "--workspace", "@mcp-broker/engine-guard"]
ARG APP=gateway
COPY packages/service-runtime/dist packages/service-runtime/dist
COPY packages/session-store/dist packages/session-store/dist
COPY packages/container-manager/dist packages/container-manager/dist
COPY apps/${APP}/dist apps/${APP}/dist

FROM ${NODE_IMAGE}
ARG APP=gateway
ENV NODE_ENV=production
COPY --from=deps /app /app
WORKDIR /app/apps/${APP}
USER 1000:1000
EXPOSE 8080 3001
CMD ["node", "dist/main.js"]
