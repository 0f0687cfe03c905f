# The gateway as a container. Build: docker build -t heygen-gateway .
# Run:   docker run -p 4000:4000 -e DATABASE_URL=postgres://… -e GATEWAY_MASTER_KEY=… heygen-gateway
# CLIs:  docker run --rm -e DATABASE_URL=… -e GATEWAY_MASTER_KEY=… heygen-gateway node dist/cli/token.js --admin

# 1. Build: all dependencies, TypeScript compiled to dist/, the console bundled into dist/console/.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY schema ./schema
COPY src ./src
# The gateway (tsc → dist/) and the budget console (Vite → dist/console/, served at /console).
RUN npm run build

# 2. Runtime: production dependencies and compiled JavaScript only, as the unprivileged `node` user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production DATA_DIR=/data PORT=4000
WORKDIR /app
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
# The flags of `npm start` (package.json; test/operations.test.ts checks they agree): Node 24 sizes the young
# generation from the host's memory (64 MB semi-spaces on a large host), which more than doubles the resting RSS of
# this service; 8 MB semi-spaces and a 1 GiB old generation (V8 then collects the start-up's garbage early instead of
# sizing the heap for a 24 GB host) keep it near 120 MB at ready (npm run measure:start).
CMD ["node", "--max-semi-space-size=8", "--max-old-space-size=1024", "--enable-source-maps", "dist/main.js"]
