#!/bin/sh
# Run once by the postgres image when its data volume is first created (compose.yaml mounts
# this directory at /docker-entrypoint-initdb.d), as the database superuser, which the
# portal never uses. Creates the two roles of docs/deployment.md:
#   PORTAL_OWNER_ROLE (portal_owner)  owns the database and every table: migrate, grants, prune
#   PORTAL_APP_ROLE   (portal_app)    the web server's role; grant_app_privileges gives it the
#                                     rest after each migrate (append only on audit tables)
# The same SQL works on a managed PostgreSQL (docs/deployment.md).
set -eu
: "${PORTAL_OWNER_PASSWORD:?set PORTAL_OWNER_PASSWORD}"
: "${PORTAL_APP_PASSWORD:?set PORTAL_APP_PASSWORD}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v db="${POSTGRES_DB:-postgres}" \
  -v owner="${PORTAL_OWNER_ROLE:-portal_owner}" -v owner_password="$PORTAL_OWNER_PASSWORD" \
  -v app="${PORTAL_APP_ROLE:-portal_app}" -v app_password="$PORTAL_APP_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
-- The owner of the database owns its public schema (PostgreSQL 15+), so it may create tables.
ALTER DATABASE :"db" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"app";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
SQL
