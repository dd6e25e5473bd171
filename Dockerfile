# Two stages: build the wheel (Rust engine + Python package), then a slim runtime with only the wheel.
# The runtime runs the wheel's console script, `lsp-node run`, exactly as `pip install` gives it
# to an operator; nothing from the source tree but config/ is in the image.
#
# The development machine has the Docker client but no Docker engine, so this file is not built
# in CI. tests/test_package.py checks what it relies on instead: the wheel builds with maturin,
# installs with its dependencies into a fresh virtualenv, holds the package data, and the
# ENTRYPOINT below (read from this file) starts a node from the installed wheel alone, in a folder
# laid out like /app, and stops cleanly on SIGTERM (the STOPSIGNAL). Keep the ENTRYPOINT in the
# exec (JSON) form: the test parses it, and the shell form would not pass SIGTERM to the node.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends curl build-essential ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH="/root/.cargo/bin:${PATH}"
RUN pip install --no-cache-dir "maturin>=1.7,<2"
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml ./
COPY engine engine
COPY lsp_node lsp_node
# A release build here (the test builds the same wheel with the dev profile, for speed).
RUN maturin build --release --locked --out /wheels

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 lsp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY config config
RUN mkdir -p /app/data && chown lsp:lsp /app/data
USER lsp
# State (seed, SQLite, logs) lives in the volume; keep it on durable storage and back up
# data/<network>/seed.mnemonic. To log to a file in it: `--log-file data/lsp.log` (SIGHUP reopens it).
VOLUME ["/app/data"]
# Lightning peers; the admin API (9736) stays on loopback unless --admin-listen says otherwise.
EXPOSE 9735
STOPSIGNAL SIGTERM
# Extra arguments to `docker run IMAGE ...` are appended: e.g. --listen 0.0.0.0:9735.
ENTRYPOINT ["lsp-node", "run", "--config", "config/lsp.toml"]
