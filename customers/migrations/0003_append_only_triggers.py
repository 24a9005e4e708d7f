"""The database itself refuses to change the audit log.

UPDATE is always refused; DELETE only while the prune's gate row exists, which is
only ever inside prune_audit_log's own transaction; TRUNCATE (PostgreSQL) only of
an empty table, so that test databases can still be flushed. Production should also
run the portal as a database role without UPDATE or DELETE on these tables.

SQLite drops a table's triggers when a migration rebuilds the table: a migration
that alters customers_lookupevent must recreate them (tests/customers/test_models.py checks).
"""

from django.db import migrations

POSTGRESQL = """
CREATE OR REPLACE FUNCTION customers_lookupevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM customers_auditgate) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'TRUNCATE' AND NOT EXISTS (SELECT 1 FROM customers_lookupevent) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'customers_lookupevent is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER customers_lookupevent_no_change
    BEFORE UPDATE OR DELETE ON customers_lookupevent
    FOR EACH ROW EXECUTE FUNCTION customers_lookupevent_append_only();
CREATE TRIGGER customers_lookupevent_no_truncate
    BEFORE TRUNCATE ON customers_lookupevent
    FOR EACH STATEMENT EXECUTE FUNCTION customers_lookupevent_append_only();
"""
POSTGRESQL_REVERSE = """
DROP TRIGGER IF EXISTS customers_lookupevent_no_truncate ON customers_lookupevent;
DROP TRIGGER IF EXISTS customers_lookupevent_no_change ON customers_lookupevent;
DROP FUNCTION IF EXISTS customers_lookupevent_append_only();
"""
SQLITE = [
    """CREATE TRIGGER customers_lookupevent_no_update BEFORE UPDATE ON customers_lookupevent
       BEGIN SELECT RAISE(ABORT, 'customers_lookupevent is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER customers_lookupevent_no_delete BEFORE DELETE ON customers_lookupevent
       WHEN NOT EXISTS (SELECT 1 FROM customers_auditgate)
       BEGIN SELECT RAISE(ABORT, 'customers_lookupevent is append-only: DELETE refused'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS customers_lookupevent_no_update",
    "DROP TRIGGER IF EXISTS customers_lookupevent_no_delete",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No append-only triggers for {schema_editor.connection.vendor}")
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement, params=None)  # the SQL holds a literal %

    return run


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_roles")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
