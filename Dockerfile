# Two stages: build the wheel (Rust engine + Python package), then a slim runtime with only the wheel.
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
RUN maturin build --release --locked --out /wheels

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 lsp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY main.py ./
COPY config config
USER lsp
# State (seed, SQLite, logs) lives in the volume; keep it on durable storage.
VOLUME ["/app/data"]
EXPOSE 9735
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "main.py", "--config", "config/lsp.toml"]
