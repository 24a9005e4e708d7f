# Debian bookworm's own Python 3.11 (the minor version CI tests on) on debian:bookworm-slim:
# CI, which reaches no registry, makes that base from Debian's archive with debootstrap and
# builds this file unchanged (.ci/image-check; docs/deployment.md, "The image"). Every
# step is deploy/container-steps.sh, which CI also runs in a clean virtualenv
# (tests/deploy/test_container.py). Needs BuildKit (Docker's default builder since 23.0).
ARG BASE_IMAGE=debian:bookworm-slim

# Python itself, once, for both stages: the virtualenv's interpreter is this very layer.
FROM ${BASE_IMAGE} AS python
# hadolint ignore=DL3008 # pinned apt versions stop installing when a bookworm security update replaces them: the suite is the pin
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 \
  && rm -rf /var/lib/apt/lists/*

FROM python AS build
# hadolint ignore=DL3008 # as above: the suite is the pin
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3-venv \
  && rm -rf /var/lib/apt/lists/*
ENV VENV=/opt/venv PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt ./
COPY deploy/container-steps.sh deploy/
# A package index of your own (a mirror), if any; and, as a BuildKit secret that no layer
# keeps, the certificate authorities pip must trust to reach it (a proxy's):
#   docker build --build-arg PIP_INDEX_URL=… --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt .
ARG PIP_INDEX_URL
RUN --mount=type=secret,id=pip-ca sh deploy/container-steps.sh install

FROM python AS runtime
ENV VENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8000
# The root file system is read-only at run time: temporary files (gunicorn's metrics
# directory among them) go to memory.
ENV TMPDIR=/dev/shm
# A fixed, numeric uid, so an orchestrator can tell it is not root (runAsNonRoot).
RUN groupadd --system --gid 999 portal \
  && useradd --system --uid 999 --gid portal --home-dir /app --no-create-home portal \
  && install -d -o portal -g portal /var/log/solarproof-audit
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Owned by root, read-only to the user the portal runs as: a compromised worker cannot
# rewrite the code it runs. .dockerignore keeps tests/, bench/ and docs/ out.
COPY . .
RUN sh deploy/container-steps.sh collectstatic
USER 999:999
EXPOSE 8000
# /healthz answers any Host over plain HTTP, so the check works with production settings.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2).status == 200 else 1)"]
CMD ["sh", "deploy/container-steps.sh", "start"]
