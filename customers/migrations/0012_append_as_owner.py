"""PostgreSQL: the app's role appends to both audit chains only through functions that run
as their owner (``SECURITY DEFINER``, a fixed ``search_path``), and loses INSERT on the
tables (``grant_app_privileges``). Each function takes its chain's lock, assigns the next
sequence, takes the time from the database's clock under the lock, links the previous
hash and computes the row's hash in SQL from the values it stores, so no caller chooses a
row's sequence, time or hash. Before, the app's role could INSERT a correctly chained row
stamped 2001 at the end of the log (and 0011's function hashed text the caller passed).

The hash is SHA-256 over the same canonical JSON as ``customers/audit/chain.py``: compact
separators, strings as ``to_json`` writes them (which escapes exactly as Python's json
module does with ``ensure_ascii=False``), objects with their keys in code-point order.
tests/customers/audit/test_append_function.py compares the two on known answers.
SQLite keeps the Python path (development only).
"""

from django.db import migrations

LOOKUP_ARGS = "bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, text, text, text"
REVIEW_ARGS = "bigint, text, text, jsonb, bigint, inet, text"
# Migration 0011's function, which hashed text its caller passed.
OLD_LOOKUP_ARGS = (
    "bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, text, text, text, "
    "text, text, text, text"
)

# Python's json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True) of
# a JSON value read back from jsonb. Only whole numbers: the review records' details hold
# IDs, counts and filters, and a fraction could be written two ways.
CANONICAL_JSON = """
CREATE OR REPLACE FUNCTION customers_audit_canonical_json(p_value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = {path} AS $$
DECLARE
    v_kind text := jsonb_typeof(p_value);
BEGIN
    IF p_value IS NULL OR v_kind = 'null' THEN
        RETURN 'null';
    ELSIF v_kind = 'object' THEN
        RETURN '{' || coalesce((
            SELECT string_agg(to_json(e.key)::text || ':' || customers_audit_canonical_json(e.value), ','
                              ORDER BY e.key COLLATE "C")
            FROM jsonb_each(p_value) e), '') || '}';
    ELSIF v_kind = 'array' THEN
        RETURN '[' || coalesce((
            SELECT string_agg(customers_audit_canonical_json(a.value), ',' ORDER BY a.n)
            FROM jsonb_array_elements(p_value) WITH ORDINALITY a(value, n)), '') || ']';
    ELSIF v_kind = 'string' THEN
        RETURN to_json(p_value #>> '{}')::text;
    ELSIF v_kind = 'number' THEN
        IF p_value::text !~ '^-?[0-9]+$' THEN
            RAISE EXCEPTION 'audit detail holds a number that is not whole: %', p_value;
        END IF;
        RETURN p_value::text;
    END IF;
    RETURN p_value::text;  -- true, false
END
$$;
"""


def _functions(schema: str) -> str:
    # pg_temp last: a temporary table or function can never stand in for the real ones.
    path = f'pg_catalog, "{schema}", pg_temp'
    time = "'\"' || to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00\"'"
    return f"""
DROP FUNCTION IF EXISTS customers_lookupevent_append({OLD_LOOKUP_ARGS});
{CANONICAL_JSON.replace("{path}", path)}
-- chain.lookup_hash: the fixed fields, then auth_method bare, reason and role as pairs, where set.
CREATE OR REPLACE FUNCTION customers_lookupevent_hash(
    p_sequence bigint, p_created_at timestamptz, p_user_id bigint, p_username text, p_project_id bigint,
    p_outcome text, p_customer_id bigint, p_channel text, p_ip inet, p_user_agent text, p_request_id text,
    p_duration_ms integer, p_cache_hit boolean, p_prev_hash text, p_auth_method text, p_reason text, p_role text
) RETURNS text LANGUAGE sql STABLE SET search_path = {path} AS $$
    SELECT encode(sha256(convert_to(
        '[' || p_sequence || ',' || {time} || ',' || coalesce(p_user_id::text, 'null')
        || ',' || to_json(p_username)::text || ',' || p_project_id || ',' || to_json(p_outcome)::text
        || ',' || coalesce(p_customer_id::text, 'null') || ',' || to_json(p_channel)::text
        || ',' || coalesce(to_json(p_ip)::text, 'null') || ',' || to_json(p_user_agent)::text
        || ',' || to_json(p_request_id)::text || ',' || p_duration_ms || ',' || p_cache_hit::text
        || ',' || to_json(p_prev_hash)::text
        || CASE WHEN p_auth_method IS NULL THEN '' ELSE ',' || to_json(p_auth_method)::text END
        || CASE WHEN p_reason IS NULL THEN '' ELSE ',["reason",' || to_json(p_reason)::text || ']' END
        || CASE WHEN p_role IS NULL THEN '' ELSE ',["role",' || to_json(p_role)::text || ']' END
        || ']', 'UTF8')), 'hex')
$$;

-- chain.review_hash: chain.REVIEW_FIELDS, in order.
CREATE OR REPLACE FUNCTION customers_historyreview_hash(
    p_sequence bigint, p_created_at timestamptz, p_user_id bigint, p_username text, p_kind text,
    p_detail jsonb, p_rows bigint, p_ip inet, p_request_id text, p_prev_hash text
) RETURNS text LANGUAGE sql STABLE SET search_path = {path} AS $$
    SELECT encode(sha256(convert_to(
        '[' || p_sequence || ',' || {time} || ',' || coalesce(p_user_id::text, 'null')
        || ',' || to_json(p_username)::text || ',' || to_json(p_kind)::text
        || ',' || customers_audit_canonical_json(p_detail) || ',' || coalesce(p_rows::text, 'null')
        || ',' || coalesce(to_json(p_ip)::text, 'null') || ',' || to_json(p_request_id)::text
        || ',' || to_json(p_prev_hash)::text || ']', 'UTF8')), 'hex')
$$;
CREATE OR REPLACE FUNCTION customers_lookupevent_append(
    p_user_id bigint, p_username text, p_project_id bigint, p_outcome text, p_customer_id bigint,
    p_channel text, p_ip inet, p_user_agent text, p_request_id text, p_duration_ms integer,
    p_cache_hit boolean, p_auth_method text, p_reason text, p_role text
) RETURNS TABLE (o_id bigint, o_sequence bigint, o_created_at timestamptz, o_prev_hash text, o_hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {path} AS $$
DECLARE
    v_sequence bigint;
    v_prev text;
    v_created timestamptz;
    v_hash text;
    v_id bigint;
BEGIN
    -- 0x500FA0D1, LOOKUP_LOCK_KEY in customers/audit/heads.py. READ COMMITTED: the head
    -- read after the lock is granted sees the event committed by the lock's last holder.
    PERFORM pg_advisory_xact_lock(1343201489);
    SELECT e.sequence, e.hash INTO v_sequence, v_prev
        FROM customers_lookupevent e ORDER BY e.sequence DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT a.through_sequence, a.through_hash INTO v_sequence, v_prev
            FROM customers_auditanchor a ORDER BY a.through_sequence DESC LIMIT 1;
        IF NOT FOUND THEN
            v_sequence := 0;
            v_prev := repeat('0', 64);
        END IF;
    END IF;
    v_sequence := v_sequence + 1;
    v_created := clock_timestamp();
    v_hash := customers_lookupevent_hash(
        v_sequence, v_created, p_user_id, p_username, p_project_id, p_outcome, p_customer_id, p_channel, p_ip,
        p_user_agent, p_request_id, p_duration_ms, p_cache_hit, v_prev, p_auth_method, p_reason, p_role);
    INSERT INTO customers_lookupevent (
        sequence, created_at, user_id, username, project_id, outcome, customer_id, channel, ip,
        user_agent, request_id, duration_ms, cache_hit, auth_method, reason, role, prev_hash, hash
    ) VALUES (
        v_sequence, v_created, p_user_id, p_username, p_project_id, p_outcome, p_customer_id, p_channel, p_ip,
        p_user_agent, p_request_id, p_duration_ms, p_cache_hit, p_auth_method, p_reason, p_role, v_prev, v_hash
    ) RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_sequence, v_created, v_prev, v_hash;
END
$$;

CREATE OR REPLACE FUNCTION customers_historyreview_append(
    p_user_id bigint, p_username text, p_kind text, p_detail jsonb, p_rows bigint, p_ip inet, p_request_id text
) RETURNS TABLE (o_id bigint, o_sequence bigint, o_created_at timestamptz, o_prev_hash text, o_hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {path} AS $$
DECLARE
    v_sequence bigint;
    v_prev text;
    v_created timestamptz;
    v_hash text;
    v_id bigint;
    v_detail jsonb := coalesce(p_detail, '{{}}'::jsonb);
BEGIN
    -- 0x500FA0D2, REVIEW_LOCK_KEY in customers/audit/heads.py.
    PERFORM pg_advisory_xact_lock(1343201490);
    SELECT r.sequence, r.hash INTO v_sequence, v_prev
        FROM customers_historyreview r ORDER BY r.sequence DESC LIMIT 1;
    IF NOT FOUND THEN
        v_sequence := 0;
        v_prev := repeat('0', 64);
    END IF;
    v_sequence := v_sequence + 1;
    v_created := clock_timestamp();
    v_hash := customers_historyreview_hash(
        v_sequence, v_created, p_user_id, p_username, p_kind, v_detail, p_rows, p_ip, p_request_id, v_prev);
    INSERT INTO customers_historyreview (
        sequence, created_at, user_id, username, kind, detail, rows, ip, request_id, prev_hash, hash
    ) VALUES (
        v_sequence, v_created, p_user_id, p_username, p_kind, v_detail, p_rows, p_ip, p_request_id, v_prev, v_hash
    ) RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_sequence, v_created, v_prev, v_hash;
END
$$;

-- Only the roles grant_app_privileges names may call them.
REVOKE ALL ON FUNCTION customers_lookupevent_append({LOOKUP_ARGS}) FROM PUBLIC;
REVOKE ALL ON FUNCTION customers_historyreview_append({REVIEW_ARGS}) FROM PUBLIC;
"""


REVERSE = f"""
DROP FUNCTION IF EXISTS customers_historyreview_append({REVIEW_ARGS});
DROP FUNCTION IF EXISTS customers_lookupevent_append({LOOKUP_ARGS});
DROP FUNCTION IF EXISTS customers_historyreview_hash(
    bigint, timestamptz, bigint, text, text, jsonb, bigint, inet, text, text);
DROP FUNCTION IF EXISTS customers_lookupevent_hash(
    bigint, timestamptz, bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, text, text, text,
    text);
DROP FUNCTION IF EXISTS customers_audit_canonical_json(jsonb);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    schema_editor.execute(_functions(schema.replace('"', '""')), params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(REVERSE, params=None)
    old = __import__("importlib").import_module("customers.migrations.0011_lookup_role")
    schema_editor.execute(old.POSTGRESQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("customers", "0011_lookup_role")]

    operations = [migrations.RunPython(forwards, backwards)]
