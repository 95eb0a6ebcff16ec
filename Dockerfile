# din-engagement for a Prefect Docker or Kubernetes work pool (prefect.yaml: consolidate-docker;
# docs/operations.md, section 9). The project at /opt/din-engagement, installed from requirements.lock (the
# pins `./dev` installs), run as an unprivileged user. The config, the data folder and the key come from the
# host or the cluster at run time (volumes, a Prefect Secret block): nothing of a network is baked in.
#
#   docker build -t registry.internal/din-engagement:$(git describe --always) .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    GX_ANALYTICS_ENABLED=false \
    DIN_PROJECT_DIR=/opt/din-engagement

WORKDIR /opt/din-engagement

# The locked dependencies first, in their own layer: a code change does not reinstall them.
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir "uv==0.13.9" \
    && uv pip sync --system --compile-bytecode requirements.lock

COPY . .
RUN uv pip install --system --no-deps . \
    && useradd --system --uid 10001 --create-home --home-dir /home/din din

USER din
CMD ["din", "--help"]
