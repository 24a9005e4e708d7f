#!/bin/sh
# The container's build and start steps, in one place. The Dockerfile runs these, and
# so does tests/test_deploy.py in a clean virtualenv (Docker cannot run on our CI
# machines), so the two cannot drift apart.
#
#   container-steps.sh install        dependencies into $VENV (default /opt/venv)
#   container-steps.sh collectstatic  hashed, compressed static files, production settings
#   container-steps.sh start          migrate (unless MIGRATE_ON_START=false), then gunicorn
set -eu
VENV="${VENV:-/opt/venv}"
APP_DIR="${APP_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$APP_DIR"

case "${1:-}" in
  install)
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet -r requirements.txt
    ;;
  collectstatic)
    # Only static files are built here: no secret or database is needed, nor kept.
    DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only SOLARPROOF_DEMO=true \
      AUDIT_SIGNING_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
      "$VENV/bin/python" manage.py collectstatic --noinput --verbosity 0
    ;;
  start)
    if [ "${MIGRATE_ON_START:-true}" = "true" ]; then
      "$VENV/bin/python" manage.py migrate --noinput
    fi
    exec "$VENV/bin/gunicorn" --config solarproof_portal/gunicorn.conf.py solarproof_portal.wsgi
    ;;
  *)
    echo "usage: $0 install|collectstatic|start" >&2
    exit 2
    ;;
esac
