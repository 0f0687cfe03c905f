# The gateway as a container. Build: docker build -t heygen-gateway .
# Run:   docker run -p 4000:4000 -e DATABASE_URL=postgres://… -e GATEWAY_MASTER_KEY=… heygen-gateway
# CLIs:  docker run --rm -e DATABASE_URL=… -e GATEWAY_MASTER_KEY=… heygen-gateway node dist/cli/token.js --admin

# 1. Build: all dependencies, TypeScript checked and bundled into dist/, the console bundled into dist/console/.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY schema ./schema
COPY src ./src
# The gateway (tsc checks, esbuild bundles → dist/) and the budget console (Vite → dist/console/, served at /console).
RUN npm run build

# 2. Runtime: production dependencies and compiled JavaScript only, as the unprivileged `node` user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production DATA_DIR=/data PORT=4000
WORKDIR /app
# package.json is also read at run time: the gateway finds its folder (migrations/, dist/console/) as the one holding
# package.json beside migrations/ (src/primitives/package-root.ts).
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# The embedded database (only when DATABASE_URL is unset) lives in /data, owned by the user that writes it.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM: the gateway stops accepting, finishes in-flight requests, stops its workers, then exits.
# The environment and flags of `npm start` (package.json; test/operations.test.ts checks they agree; README's
# Commands table and docs/benchmark.md say why and what they cost). Node 24 sizes the young generation from the
# host's memory (64 MB semi-spaces on a large host), which more than doubles the resting RSS of this service. 4 MB
# semi-spaces, an old generation allowed to grow by 30 % over what a full collection left (V8's own factor is larger
# and adapts upwards under load) and a 1 GiB ceiling (a heap past it is a leak) keep it near 115 MB at ready and
# about 30 MB lower under load; MALLOC_ARENA_MAX=2 keeps glibc from giving V8's and libuv's threads arenas of their
# own, whose freed memory stays in the RSS after a peak. (NODE_ENV=production, which npm start sets too, is set above.)
ENV MALLOC_ARENA_MAX=2
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=30", "--max-old-space-size=1024", "--enable-source-maps", "dist/main.js"]
