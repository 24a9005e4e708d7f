"""Each lookup records the staff member's role at the time (issue 26: the customer access
report says who, and as what). The column is nullable, so it is added in place (SQLite
keeps its append-only triggers) and rows written before it keep verifying: the chain
hashes ["role", value] only where it is set (``customers.audit.chain``).

PostgreSQL's one-round-trip append (migration 0009) takes the role as one more argument,
so its function is replaced: dropped with its old arguments and made again with the new
one, in this migration's transaction."""

import importlib

from django.db import migrations, models

APPEND_0009 = importlib.import_module("customers.migrations.0009_append_function")

POSTGRESQL = """
DROP FUNCTION IF EXISTS customers_lookupevent_append(
    bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, text, text, text, text, text, text
);
CREATE FUNCTION customers_lookupevent_append(
    p_user_id bigint, p_username text, p_project_id bigint, p_outcome text, p_customer_id bigint,
    p_channel text, p_ip inet, p_user_agent text, p_request_id text, p_duration_ms integer,
    p_cache_hit boolean, p_auth_method text, p_reason text, p_role text,
    p_head text, p_after_sequence text, p_after_time text, p_after_prev_hash text
) RETURNS TABLE (o_id bigint, o_sequence bigint, o_created_at timestamptz, o_prev_hash text, o_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_sequence bigint;
    v_prev text;
    v_created timestamptz;
    v_hash text;
    v_id bigint;
BEGIN
    -- As in migration 0009: lock, head, time under the lock, hash, insert.
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
    v_hash := encode(sha256(convert_to(
        p_head || v_sequence::text || p_after_sequence
        || '"' || to_char(v_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00"'
        || p_after_time || '"' || v_prev || '"' || p_after_prev_hash, 'UTF8')), 'hex');
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
"""
POSTGRESQL_REVERSE = """
DROP FUNCTION IF EXISTS customers_lookupevent_append(
    bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, text, text, text, text, text, text, text
);
"""


def _run(*statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql, params=None)  # the SQL holds literal quotes and %

    return run


class Migration(migrations.Migration):
    dependencies = [("customers", "0010_access_report")]

    operations = [
        migrations.AddField(
            model_name="lookupevent",
            name="role",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="The staff member's portal roles when they looked up (empty: none). Empty for older lookups.",
                max_length=64,
                null=True,
                verbose_name="role at the time",
            ),
        ),
        migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_REVERSE, APPEND_0009.POSTGRESQL)),
    ]
