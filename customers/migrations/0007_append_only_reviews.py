"""Review records and prune records become append-only in the database, like lookup
events: UPDATE is refused; DELETE only while the prune's gate row exists (only ever
inside one privileged transaction); TRUNCATE (PostgreSQL) only of an empty table, so
test databases can still be flushed.

SQLite drops a table's triggers when a migration rebuilds the table: a later migration
that alters customers_historyreview or customers_auditanchor must recreate them
(tests/customers/test_models.py checks that every audit table refuses changes)."""

from django.db import migrations, models

TABLES = ("customers_historyreview", "customers_auditanchor")

POSTGRESQL = [
    """
CREATE OR REPLACE FUNCTION customers_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    empty boolean;
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM customers_auditgate) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO empty;
        IF empty THEN
            RETURN NULL;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
""",
    *(
        f"""
CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION customers_append_only();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION customers_append_only();
"""
        for table in TABLES
    ),
]
POSTGRESQL_REVERSE = [
    *(
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}; DROP TRIGGER IF EXISTS {table}_no_change ON {table};"
        for table in TABLES
    ),
    "DROP FUNCTION IF EXISTS customers_append_only();",
]
SQLITE = [
    statement
    for table in TABLES
    for statement in (
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            WHEN NOT EXISTS (SELECT 1 FROM customers_auditgate)
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END""",
    )
]
SQLITE_REVERSE = [
    statement
    for table in TABLES
    for statement in (f"DROP TRIGGER IF EXISTS {table}_no_update", f"DROP TRIGGER IF EXISTS {table}_no_delete")
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"No append-only triggers for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement, params=None)  # the SQL holds a literal %

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0006_chain_existing_reviews"),
    ]

    operations = [
        migrations.AlterField(
            model_name="historyreview",
            name="hash",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="historyreview",
            name="prev_hash",
            field=models.CharField(editable=False, max_length=64, verbose_name="previous hash"),
        ),
        migrations.AlterField(
            model_name="historyreview",
            name="sequence",
            field=models.PositiveBigIntegerField(editable=False, unique=True),
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
