# The relay in a container: `switchboard serve` on a small distroless base, as a non-root
# user, its data (tokens, rooms) in the /data volume.
#
#   docker build -t switchboard .
#   docker run --rm -v sb:/data switchboard tokens create --room team --peer alice
#   docker run -d -p 7700:7700 -v sb:/data switchboard serve --listen 0.0.0.0:7700 \
#       --allowed-host relay.example.com
#
# A listen address other than loopback is refused until a token exists: create one first.
# For a team relay on Postgres, pass SWITCHBOARD_DATABASE_URL (see docs/team.md).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The product build: release, without the test-only features; the linker script that orders
# an agent session's code applies to Linux release builds (crates/switchboard/build.rs).
RUN cargo build --release --locked -p switchboard \
    && install -D -m 0755 target/release/switchboard /out/switchboard \
    && install -d -m 0700 /out/data

# glibc and libgcc only: SQLite is compiled in, TLS is rustls.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/switchboard /usr/local/bin/switchboard
ENV SWITCHBOARD_HOME=/data
# The nonroot user (65532) owns the volume's mount point (0700, as the store wants its
# directory), so the store can be created there.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
EXPOSE 7700
# Numeric, so a runtime that checks for a non-root user (Kubernetes `runAsNonRoot`) can tell
# without reading the image's /etc/passwd.
USER 65532:65532
# `ping` asks `GET /livez`, which needs no token and passes the Host check: the health check
# holds no secret. Exec form, since the image has no shell.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/switchboard", "ping", "http://127.0.0.1:7700", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve", "--listen", "0.0.0.0:7700"]
