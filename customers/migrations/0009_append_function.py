"""PostgreSQL appends to the audit chain in one round trip: a function that takes the
chain's advisory lock, reads the head, hashes and inserts, called as one statement in
its own transaction (customers/audit/log.py). Before it, an append was five round trips
(BEGIN, lock, head, INSERT, COMMIT), all inside the lock. SQLite keeps the Python path.

The hash is SHA-256 over the same canonical JSON as ``chain.lookup_hash``: the caller
passes that text cut at the three values only the function knows (the sequence, the
time, taken under the lock, and the previous hash), and the function joins it up. ``verify_audit_log`` recomputes
every hash in Python, so any difference between the two would be caught at once
(tests/customers/audit/test_chain.py writes awkward values through this path and verifies).
"""

from django.db import migrations

# 0x500FA0D1, the key in customers/audit/heads.py (LOOKUP_LOCK_KEY).
POSTGRESQL = """
CREATE OR REPLACE FUNCTION customers_lookupevent_append(
    p_user_id bigint, p_username text, p_project_id bigint, p_outcome text, p_customer_id bigint,
    p_channel text, p_ip inet, p_user_agent text, p_request_id text, p_duration_ms integer,
    p_cache_hit boolean, p_auth_method text, p_reason text,
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
    -- READ COMMITTED: each statement below takes a fresh snapshot, so the head read
    -- after the lock is granted sees the event committed by the lock's last holder.
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
        user_agent, request_id, duration_ms, cache_hit, auth_method, reason, prev_hash, hash
    ) VALUES (
        v_sequence, v_created, p_user_id, p_username, p_project_id, p_outcome, p_customer_id, p_channel, p_ip,
        p_user_agent, p_request_id, p_duration_ms, p_cache_hit, p_auth_method, p_reason, v_prev, v_hash
    ) RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_sequence, v_created, v_prev, v_hash;
END
$$;
"""
POSTGRESQL_REVERSE = """
DROP FUNCTION IF EXISTS customers_lookupevent_append(
    bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, text, text, text, text, text, text
);
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # the SQL holds literal quotes and %

    return run


class Migration(migrations.Migration):
    dependencies = [("customers", "0008_outcome_labels_staff_read")]

    operations = [migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_REVERSE))]
