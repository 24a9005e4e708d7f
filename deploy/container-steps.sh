#!/bin/sh
# The container's build and start steps, in one place. The Dockerfile runs these, and
# so does tests/deploy/test_container.py in a clean virtualenv (CI also builds and runs the
# image itself: .ci/image-check), so the two cannot drift apart.
#
#   container-steps.sh install        dependencies into $VENV (default /opt/venv)
#   container-steps.sh collectstatic  hashed, compressed static files, production settings
#   container-steps.sh start          as the owner (DATABASE_OWNER_URL): migrate and grant the
#                                     app's role its privileges (unless MIGRATE_ON_START=false);
#                                     then check --deploy and gunicorn as the app's role
#                                     (DATABASE_URL), with the owner's URL gone from the environment
#   container-steps.sh prune [ARGS]   prune_audit_log as the owner, the one role allowed to delete
set -eu
VENV="${VENV:-/opt/venv}"
APP_DIR="${APP_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$APP_DIR"

case "${1:-}" in
  install)
    python3 -m venv "$VENV"
    # The certificate authorities pip trusts, when the build hands them over as a BuildKit
    # secret (a proxy's or a mirror's; the Dockerfile): read from the mount, never copied.
    if [ -s "${PIP_CA_FILE:-/run/secrets/pip-ca}" ]; then
      export PIP_CERT="${PIP_CA_FILE:-/run/secrets/pip-ca}"
    fi
    # Every package, transitive ones included, pinned with its hashes (compiled from
    # requirements.in): a tampered or substituted download is refused.
    "$VENV/bin/pip" install --disable-pip-version-check --quiet --require-hashes --no-deps -r requirements.txt
    "$VENV/bin/pip" check
    ;;
  collectstatic)
    # Only static files are built here: no secret or database is needed, nor kept.
    DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only SOLARPROOF_DEMO=true \
      AUDIT_SIGNING_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
      "$VENV/bin/python" manage.py collectstatic --noinput --verbosity 0
    ;;
  start)
    if [ "${MIGRATE_ON_START:-true}" = "true" ]; then
      if [ -n "${DATABASE_OWNER_URL:-}" ]; then
        DATABASE_URL="$DATABASE_OWNER_URL" "$VENV/bin/python" manage.py migrate --noinput
        "$VENV/bin/python" manage.py grant_app_privileges
      else
        "$VENV/bin/python" manage.py migrate --noinput
      fi
    fi
    # The web server never holds the owner's password.
    unset DATABASE_OWNER_URL
    # Refuses to serve with an unsafe setting, or as a database role that could undo the audit log.
    "$VENV/bin/python" manage.py check --deploy --fail-level ERROR
    exec "$VENV/bin/gunicorn" --config solarproof_portal/gunicorn.conf.py solarproof_portal.wsgi
    ;;
  prune)
    shift
    : "${DATABASE_OWNER_URL:?prune needs DATABASE_OWNER_URL: only the owner may delete from the audit log}"
    DATABASE_URL="$DATABASE_OWNER_URL" exec "$VENV/bin/python" manage.py prune_audit_log "$@"
    ;;
  *)
    echo "usage: $0 install|collectstatic|start|prune [prune_audit_log options]" >&2
    exit 2
    ;;
esac
