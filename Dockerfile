# The gateway as a container. Build: docker build -t heygen-gateway .
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# tsx runs the TypeScript sources directly; dev dependencies (tests, drizzle-kit) are left out.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
COPY schema ./schema
USER node
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM: the gateway stops accepting, finishes in-flight requests, stops its workers, then exits.
CMD ["node", "--import", "tsx", "src/main.ts"]
