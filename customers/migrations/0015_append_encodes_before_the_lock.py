"""PostgreSQL: the append functions encode the row's own fields before they take the chain's
lock, and hold it only for what needs it: the head read, the time, joining the text up, the
SHA-256, the INSERT and the COMMIT. The hash is the same to the byte (the canonical JSON of
``customers/audit/chain.py``): ``customers_lookupevent_hash`` and ``customers_historyreview_hash``
are now built from the very pieces the append functions use, and
tests/customers/audit/test_append_function.py holds them to the known answers.

Measured with bench/cases/audit_writes.py (bench/NOTES.md, "Audit append"): the lock is held
from its grant to the end of COMMIT, and most of that is COMMIT's WAL flush, which has to be
inside it (the next append reads this row as the head, and sees it only once it is committed).
What the functions did under the lock beyond that: the head read, the text encoding and hash,
the INSERT into the table and its indexes, the deferred foreign-key check at COMMIT.

Also on both databases: the lookup table's single-column ``user_id`` index goes. The
``(user_id, -sequence)`` index (lookup_user_seq_idx) starts with the same column and serves
every query it served (the foreign key's check when a user is deleted, the access report's
busy hours, the recent lookups), so it was one index insert per append, under the lock, that
no plan needed. Dropped by name, not by AlterField: SQLite would rebuild the table for that
and lose its append-only triggers.

The append functions keep their signatures, owner, ``SECURITY DEFINER``, fixed ``search_path``
and the EXECUTE grants ``grant_app_privileges`` gave (CREATE OR REPLACE keeps all of them).
"""

import importlib

from django.conf import settings
from django.db import migrations, models

APPEND_0012 = importlib.import_module("customers.migrations.0012_append_as_owner")
INLINE_0014 = importlib.import_module("customers.migrations.0014_audit_hash_functions_inline")

TIME = "'\"' || to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00\"'"

# The helpers name nothing outside pg_catalog but each other, and have no SET clause, so the
# planner inlines them (migration 0014); called from the append functions they run under
# those functions' fixed search_path.
HELPERS = f"""
-- chain.lookup_hash's text between the time and the previous hash, commas included:
-- user_id ... cache_hit, which the row's own fields decide.
CREATE OR REPLACE FUNCTION customers_lookupevent_own_fields(
    p_user_id bigint, p_username text, p_project_id bigint, p_outcome text, p_customer_id bigint,
    p_channel text, p_ip inet, p_user_agent text, p_request_id text, p_duration_ms integer, p_cache_hit boolean
) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ',' || coalesce(p_user_id::text, 'null')
        || ',' || to_json(p_username)::text || ',' || p_project_id || ',' || to_json(p_outcome)::text
        || ',' || coalesce(p_customer_id::text, 'null') || ',' || to_json(p_channel)::text
        || ',' || coalesce(to_json(p_ip)::text, 'null') || ',' || to_json(p_user_agent)::text
        || ',' || to_json(p_request_id)::text || ',' || p_duration_ms || ',' || p_cache_hit::text || ','
$$;

-- The text after the previous hash: auth_method bare, reason and role as pairs, where set.
CREATE OR REPLACE FUNCTION customers_lookupevent_later_fields(p_auth_method text, p_reason text, p_role text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_auth_method IS NULL THEN '' ELSE ',' || to_json(p_auth_method)::text END
        || CASE WHEN p_reason IS NULL THEN '' ELSE ',["reason",' || to_json(p_reason)::text || ']' END
        || CASE WHEN p_role IS NULL THEN '' ELSE ',["role",' || to_json(p_role)::text || ']' END
        || ']'
$$;

-- Under the lock: the sequence, the time and the previous hash joined to the encoded rest, hashed.
CREATE OR REPLACE FUNCTION customers_lookupevent_link(
    p_sequence bigint, p_created_at timestamptz, p_own_fields text, p_prev_hash text, p_later_fields text
) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(
        '[' || p_sequence || ',' || {TIME} || p_own_fields || to_json(p_prev_hash)::text || p_later_fields,
        'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION customers_lookupevent_hash(
    p_sequence bigint, p_created_at timestamptz, p_user_id bigint, p_username text, p_project_id bigint,
    p_outcome text, p_customer_id bigint, p_channel text, p_ip inet, p_user_agent text, p_request_id text,
    p_duration_ms integer, p_cache_hit boolean, p_prev_hash text, p_auth_method text, p_reason text, p_role text
) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT customers_lookupevent_link(
        p_sequence, p_created_at,
        customers_lookupevent_own_fields(p_user_id, p_username, p_project_id, p_outcome, p_customer_id, p_channel,
                                         p_ip, p_user_agent, p_request_id, p_duration_ms, p_cache_hit),
        p_prev_hash, customers_lookupevent_later_fields(p_auth_method, p_reason, p_role))
$$;

-- chain.review_hash's text between the time and the previous hash, commas included.
CREATE OR REPLACE FUNCTION customers_historyreview_own_fields(
    p_user_id bigint, p_username text, p_kind text, p_detail jsonb, p_rows bigint, p_ip inet, p_request_id text
) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ',' || coalesce(p_user_id::text, 'null')
        || ',' || to_json(p_username)::text || ',' || to_json(p_kind)::text
        || ',' || customers_audit_canonical_json(p_detail) || ',' || coalesce(p_rows::text, 'null')
        || ',' || coalesce(to_json(p_ip)::text, 'null') || ',' || to_json(p_request_id)::text || ','
$$;

CREATE OR REPLACE FUNCTION customers_historyreview_link(
    p_sequence bigint, p_created_at timestamptz, p_own_fields text, p_prev_hash text
) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(
        '[' || p_sequence || ',' || {TIME} || p_own_fields || to_json(p_prev_hash)::text || ']', 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION customers_historyreview_hash(
    p_sequence bigint, p_created_at timestamptz, p_user_id bigint, p_username text, p_kind text,
    p_detail jsonb, p_rows bigint, p_ip inet, p_request_id text, p_prev_hash text
) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT customers_historyreview_link(
        p_sequence, p_created_at,
        customers_historyreview_own_fields(p_user_id, p_username, p_kind, p_detail, p_rows, p_ip, p_request_id),
        p_prev_hash)
$$;
"""


def _appends(schema: str) -> str:
    path = f'pg_catalog, "{schema}", pg_temp'
    return f"""
CREATE OR REPLACE FUNCTION customers_lookupevent_append(
    p_user_id bigint, p_username text, p_project_id bigint, p_outcome text, p_customer_id bigint,
    p_channel text, p_ip inet, p_user_agent text, p_request_id text, p_duration_ms integer,
    p_cache_hit boolean, p_auth_method text, p_reason text, p_role text
) RETURNS TABLE (o_id bigint, o_sequence bigint, o_created_at timestamptz, o_prev_hash text, o_hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {path} AS $$
DECLARE
    -- Before the lock: everything the row's own fields decide.
    v_own text := customers_lookupevent_own_fields(
        p_user_id, p_username, p_project_id, p_outcome, p_customer_id, p_channel, p_ip, p_user_agent, p_request_id,
        p_duration_ms, p_cache_hit);
    v_later text := customers_lookupevent_later_fields(p_auth_method, p_reason, p_role);
    v_sequence bigint;
    v_prev text;
    v_created timestamptz;
    v_hash text;
    v_id bigint;
BEGIN
    -- 0x500FA0D1, LOOKUP_LOCK_KEY in customers/audit/heads.py, held until COMMIT ends.
    -- READ COMMITTED: the head read after the lock is granted sees the event committed by
    -- the lock's last holder.
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
    v_hash := customers_lookupevent_link(v_sequence, v_created, v_own, v_prev, v_later);
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
    v_detail jsonb := coalesce(p_detail, '{{}}'::jsonb);
    -- Before the lock: everything the record's own fields decide (the detail's canonical JSON too).
    v_own text := customers_historyreview_own_fields(
        p_user_id, p_username, p_kind, v_detail, p_rows, p_ip, p_request_id);
    v_sequence bigint;
    v_prev text;
    v_created timestamptz;
    v_hash text;
    v_id bigint;
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
    v_hash := customers_historyreview_link(v_sequence, v_created, v_own, v_prev);
    INSERT INTO customers_historyreview (
        sequence, created_at, user_id, username, kind, detail, rows, ip, request_id, prev_hash, hash
    ) VALUES (
        v_sequence, v_created, p_user_id, p_username, p_kind, v_detail, p_rows, p_ip, p_request_id, v_prev, v_hash
    ) RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_sequence, v_created, v_prev, v_hash;
END
$$;
"""


DROP_HELPERS = """
DROP FUNCTION IF EXISTS customers_lookupevent_own_fields(
    bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean);
DROP FUNCTION IF EXISTS customers_lookupevent_later_fields(text, text, text);
DROP FUNCTION IF EXISTS customers_lookupevent_link(bigint, timestamptz, text, text, text);
DROP FUNCTION IF EXISTS customers_historyreview_own_fields(bigint, text, text, jsonb, bigint, inet, text);
DROP FUNCTION IF EXISTS customers_historyreview_link(bigint, timestamptz, text, text);
"""


def _user_id_indexes(schema_editor) -> list[str]:
    """The lookup table's index on exactly (user_id): not unique, not the primary key."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "customers_lookupevent")
    return [
        name
        for name, details in constraints.items()
        if details["index"] and details["columns"] == ["user_id"] and not details["unique"]
        and not details["primary_key"]
    ]  # fmt: skip


def forwards(apps, schema_editor):
    for name in _user_id_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    schema_editor.execute(HELPERS + _appends(schema.replace('"', '""')), params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        APPEND_0012.forwards(apps, schema_editor)  # 0012's append functions
        INLINE_0014.forwards(apps, schema_editor)  # 0014's helpers
        schema_editor.execute(DROP_HELPERS, params=None)
    if not _user_id_indexes(schema_editor):
        model = apps.get_model("customers", "LookupEvent")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[model._meta.get_field("user")]))


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("customers", "0014_audit_hash_functions_inline"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lookupevent",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=models.deletion.PROTECT,
                        related_name="lookup_events",
                        to=settings.AUTH_USER_MODEL,
                    ),
                )
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
