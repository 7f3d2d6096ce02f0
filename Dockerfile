# syntax=docker/dockerfile:1
# pikabot: the Discord bot, its SQLite database and its data folder on the /data volume.
# It installs exactly what the README's pip path installs (`pip install .`: the project and the
# dependencies in pyproject.toml, no dev extras), into a virtualenv copied to a slim image.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the package needs to build (see .dockerignore): pyproject.toml names README.md.
# bot/ holds the sandbox and its fake Discord, for `docker compose --profile sandbox`; tests/
# (and the OpenAPI body check the tests use) stay out of the image.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIKABOT_DATABASE=/data/pikabot.sqlite3 \
    PIKABOT_DATA_DIR=/data \
    PIKABOT_HTTP_PORT=8080 \
    PIKABOT_HTTP_HOST=0.0.0.0
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home pikabot \
    && mkdir /data && chown pikabot:pikabot /data
COPY --from=build /opt/venv /opt/venv
USER pikabot
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# slim has no curl: Python asks /healthz; a 503 (or no answer) raises and exits non-zero.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PIKABOT_HTTP_PORT', '8080'), timeout=8)"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
