# Build stage: compile TypeScript to dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The compiler needs neither the embedded Postgres (optional, 60 MB of binaries) nor install
# scripts: without them the `node` devDependency fetches no second Node binary and links no
# node_modules/.bin/node, so `npm run build` runs on this image's Node 24.
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies only (no embedded Postgres: set DATABASE_URL), non-root.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
# A small young generation and a capped heap keep a worker's RSS near 150 MB under load (measured
# by bench/attempts.ts); without them V8 grows to ~380 MB on a machine with spare memory. Raise
# the old space for a process that also serves large reports.
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=256"
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/patch-postgres.cjs ./scripts/
# No production dependency needs an install script. The demo and mail-catcher commands need
# devDependencies and say so here; without DATABASE_URL the worker exits 78 (no embedded Postgres).
# Our own postinstall step is run by hand: postgres.js must reserve a transaction's connection
# (scripts/patch-postgres.cjs).
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && node scripts/patch-postgres.cjs \
  && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY sql ./sql
COPY templates ./templates
# Without SMTP_URL reminders are written to OUTBOX_DIR (default /app/.data/outbox); the non-root
# user must be able to create it. Mount a volume there to keep the files.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 3000
# `start` applies pending migrations (under an advisory lock) before it serves or works.
CMD ["node", "dist/cli.js", "start", "--role", "all"]
