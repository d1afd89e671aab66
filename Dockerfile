# syntax=docker/dockerfile:1
#
# tenantflow: one image for every process of the app. What a container runs is chosen by its
# command (see docker-compose.yml):
#   web      gunicorn config.wsgi:application ...   (the default CMD below)
#   worker   python manage.py run_temporal_worker   (Temporal workers + the outbox relay)
#   migrate  python manage.py migrate_schemas --noinput
#
# Single stage: every dependency in requirements.lock ships manylinux wheels (psycopg-binary,
# temporalio, ...), so no compiler or build stage is needed.
#
# No HEALTHCHECK here on purpose: the worker and migrate containers use this image too and
# serve no HTTP. The web healthcheck lives in docker-compose.yml.

ARG PYTHON_IMAGE=python:3.12-slim-trixie
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=config.settings.production

# Unprivileged runtime user. The code stays owned by root, so the app cannot modify itself;
# MEDIA_ROOT (tenant data exports) is the one directory it writes. docker-compose.yml mounts a
# named volume there, and a new named volume takes the owner of the directory it covers.
ENV MEDIA_ROOT=/var/lib/tenantflow/media
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p "$MEDIA_ROOT" \
    && chown app:app "$MEDIA_ROOT" \
    && chmod 0750 "$MEDIA_ROOT"

# pg_dump matching the PostgreSQL 18 server in docker-compose.yml: `migrate` snapshots the
# template schema with it, and new tenant schemas are replayed from that snapshot (without
# pg_dump they are made by running migrations: correct, only slower). Debian's own client is
# 17, which refuses to dump an 18 server, so it comes from the PostgreSQL project's (PGDG)
# repository, set up by Debian's postgresql-common script.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-18 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so code changes do not invalidate this layer.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY . .

# The app's own bytecode, written once here: with PYTHONDONTWRITEBYTECODE every process would
# otherwise compile the app's modules at each start (pip already compiled the packages').
RUN python -m compileall -q config core accounts tenants orchestration

# Collect static files (admin, DRF) into STATIC_ROOT=/app/staticfiles at build time, so a
# reverse proxy or volume can serve them. collectstatic does not touch the database; the
# production settings only need a syntactically valid DATABASE_URL and a long SECRET_KEY to
# import. Both values below are throwaway placeholders scoped to this RUN step (they are not
# ENV, so no container sees them); real values come from the runtime environment.
RUN SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime-0123456789 \
    DATABASE_URL=postgres://build@localhost:5432/build \
    python manage.py collectstatic --noinput

# The workers' build id (Worker Versioning): empty, a hash of the workflow and activity
# sources, computed by each worker at start; set it to name versions yourself, e.g.
# --build-arg TEMPORAL_BUILD_ID=$(git rev-parse --short HEAD). Last, so that a new value
# rebuilds nothing else.
ARG TEMPORAL_BUILD_ID=
ENV TEMPORAL_BUILD_ID=${TEMPORAL_BUILD_ID}

USER app

EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
