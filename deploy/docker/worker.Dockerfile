# syntax=docker/dockerfile:1
# The lakegate worker: `lakegate worker` on the AWS backend (S3, Glue, Athena, Batch, SQS events).
# Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t <registry>/lakegate-worker:<tag> .

# Same toolchain as the machines that test the project (rust-version in Cargo.toml is the floor).
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Only what the workspace needs to compile; examples/ and docs/ stay out of the layer cache key.
COPY Cargo.toml Cargo.lock ./
COPY models models
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY tests tests
# --locked: the image gets exactly the dependency versions CI tested. The cache mounts keep the
# registry and target/ between builds; the binary is copied out because the mount is not a layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p lakegate \
 && install -D -m 0755 target/release/lakegate /out/lakegate

# distroless/cc: glibc, libgcc and CA certificates (TLS to Temporal Cloud and AWS), no shell, no
# package manager. The `nonroot` tag runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lakegate /usr/local/bin/lakegate
USER 65532:65532
# Metrics for Prometheus (LAKEGATE_METRICS_ADDR, path /metrics).
EXPOSE 9464
ENV LAKEGATE_BACKEND=aws \
    LAKEGATE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/lakegate"]
CMD ["worker"]
