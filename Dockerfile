# syntax=docker/dockerfile:1
#
# MoA Queue: one image for both processes.
#   API (default):  node apps/api/dist/main.js      (PORT 8080: API, /healthz, /readyz, /metrics)
#   worker:         node apps/worker/dist/main.js   (METRICS_PORT 9464: /metrics, /healthz, /readyz)
# Configuration and secrets come from the environment and a mounted MOA_CONFIG
# file at run time; nothing is baked in (see docs/operations.md).
#
#   docker build -t moa-queue .                 # runtime image (the last stage)
#   docker build --target build -t moa-queue:build .   # sources + dev deps (fake provider, tests)

# ---------------------------------------------------------------------------
# build: every dependency (dev ones too), then `tsc -b` into each workspace's dist/
# ---------------------------------------------------------------------------
FROM node:24-slim AS build
WORKDIR /app

# Manifests first, so the npm ci layer is reused until a package.json or the lock file changes.
# Every workspace's package.json must be here: npm ci refuses a lock file that names a missing workspace.
COPY package.json package-lock.json .npmrc ./
COPY libs/moa/package.json libs/moa/
COPY libs/contract/package.json libs/contract/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/cli/package.json apps/cli/
COPY tools/fake-provider/package.json tools/fake-provider/
COPY tools/test-support/package.json tools/test-support/
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.base.json ./
COPY libs libs
COPY apps apps
COPY tools tools
RUN npm run build

# ---------------------------------------------------------------------------
# runtime: production dependencies and compiled output only, run as `node`
# ---------------------------------------------------------------------------
FROM node:24-slim AS runtime

# tini is PID 1: it forwards SIGTERM to Node (which then drains: the worker
# stops taking jobs and waits SHUTDOWN_GRACE_MS for in-flight calls) and reaps zombies.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json .npmrc ./
COPY libs/moa/package.json libs/moa/
COPY libs/contract/package.json libs/contract/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/cli/package.json apps/cli/
COPY tools/fake-provider/package.json tools/fake-provider/
COPY tools/test-support/package.json tools/test-support/
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# Compiled output of the API, the worker and the libraries they import, plus runtime assets.
# Files stay owned by root: the `node` user can read but not change the app.
COPY --from=build /app/libs/moa/dist libs/moa/dist
COPY --from=build /app/libs/contract/dist libs/contract/dist
COPY --from=build /app/apps/api/dist apps/api/dist
COPY --from=build /app/apps/worker/dist apps/worker/dist
# Runtime assets resolved next to dist/: the web console's static files, and the
# Lua scripts loaded with defineCommand (the API's rate limiter's token bucket, the
# worker's request progress writes, the Redis file store's list-to-file steps).
COPY --from=build /app/apps/api/public apps/api/public
COPY --from=build /app/apps/api/lua apps/api/lua
COPY --from=build /app/apps/worker/lua apps/worker/lua
COPY --from=build /app/libs/contract/lua libs/contract/lua

# In a container the API must listen beyond loopback; it then refuses to start
# without MOA_API_KEYS unless MOA_AUTH=none is set on purpose.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_PORT=9464

# Where docker-compose.yml and the Kubernetes manifests mount the files volume (MOA_FILES_DIR):
# a new named volume takes this directory's owner, so `node` can write batch files there.
RUN mkdir -p /data/files && chown node:node /data/files

USER node
EXPOSE 8080 9464

# The API's liveness probe. The worker serves /healthz on METRICS_PORT instead:
# docker-compose.yml overrides this check for it (Kubernetes ignores HEALTHCHECK).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "apps/api/dist/main.js"]
