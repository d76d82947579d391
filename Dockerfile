# craftbase in a container: PostgreSQL 15 and the one binary, run as a non-root user.
#
#   docker build -t craftbase .
#   docker run -p 54321:54321 -v craftbase-data:/data craftbase
#   docker exec <container> craftbase status --json --data-dir /data   # the keys
#
# The data directory (/data) holds the PostgreSQL cluster and the generated secrets: keep it on
# a volume. A Supabase project folder mounted at /app (supabase/migrations, supabase/seed.sql) is
# applied at start. Settings come from the environment (see deploy/README.md); expose the API
# through a TLS reverse proxy (deploy/nginx.conf, deploy/Caddyfile).
# crates/craftbase/tests/dockerfile.rs checks this file against the repository.

# --- builder: the release binary --------------------------------------------------------------
FROM rust:1-bookworm AS builder
# The replication stream (pg_walstream) links libpq; passkeys' WebAuthn verification (webauthn-rs)
# links OpenSSL.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Everything .dockerignore lets through: the workspace's manifests, crates, bench (a workspace
# member) and the SQL the binary embeds.
COPY . .
RUN cargo build --release --locked -p craftbase \
    && strip target/release/craftbase

# --- runtime: Debian with PostgreSQL's server binaries ----------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        postgresql-15 libpq5 libssl3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin craftbase \
    && mkdir -p /data /app \
    && chown craftbase:craftbase /data /app
COPY --from=builder /src/target/release/craftbase /usr/local/bin/craftbase
USER craftbase
WORKDIR /app
VOLUME ["/data"]
EXPOSE 54321
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:54321/health || exit 1
CMD ["craftbase","start","--host","0.0.0.0","--data-dir","/data"]
