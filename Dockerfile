# syntax=docker/dockerfile:1
# Python 3.11, the minor version CI tests on. Every step is deploy/container-steps.sh,
# which CI also runs in a clean virtualenv (tests/test_deploy.py).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV VENV=/opt/venv PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt ./
COPY deploy/container-steps.sh deploy/
RUN sh deploy/container-steps.sh install

FROM ${PYTHON_IMAGE} AS runtime
ENV VENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8000
RUN groupadd --system portal && useradd --system --gid portal --home-dir /app --no-create-home portal \
  && install -d -o portal -g portal /var/log/solarproof-audit
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Owned by root, read-only to the user the portal runs as: a compromised worker cannot
# rewrite the code it runs. .dockerignore keeps tests/, bench/ and docs/ out.
COPY . .
RUN sh deploy/container-steps.sh collectstatic
USER portal
EXPOSE 8000
# /healthz answers any Host over plain HTTP, so the check works with production settings.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2).status == 200 else 1)"]
CMD ["sh", "deploy/container-steps.sh", "start"]
