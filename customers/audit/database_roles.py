"""Least privilege in PostgreSQL: who may do what to the audit tables.

Two roles. The owner (``DATABASE_OWNER_URL``) owns every table: it runs ``migrate``,
``grant_app_privileges`` and ``prune_audit_log``. The app's role (``DATABASE_URL``), the
one the web server connects as, may read and write the portal's ordinary tables but only
append to the audit log, and only through the owner's append functions (migration 0012):
no INSERT, UPDATE, DELETE or TRUNCATE on an audit table, so it never chooses a row's
sequence, time or hash; no way into the prune's gate; and, not being the owner or a
superuser, no way to switch the append-only triggers off (``ALTER TABLE ... DISABLE
TRIGGER`` needs the owner) or to replace a function, and no CREATE in the functions'
schema (an object there could stand in for a name they call, run as the owner). ``check --deploy`` refuses a role
that could (``customers/checks.py``).
"""

from __future__ import annotations

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from customers.models import AuditAnchor, AuditGate, HistoryReview, LookupEvent

# What the app's role may do to each audit table; anything else is revoked.
AUDIT_TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # Appended through APPEND_FUNCTIONS only.
    LookupEvent._meta.db_table: ("SELECT",),
    HistoryReview._meta.db_table: ("SELECT",),
    # Written by the prune only, which runs as the owner; read by the chain's verifier.
    AuditAnchor._meta.db_table: ("SELECT",),
    # A row here lets DELETE past the triggers: only the owner's prune may write one.
    AuditGate._meta.db_table: (),
}
# SECURITY DEFINER functions owned by the owner (migration 0012): the app's role may EXECUTE them.
APPEND_FUNCTIONS = (
    "customers_lookupevent_append(bigint, text, bigint, text, bigint, text, inet, text, text, integer, boolean, "
    "text, text, text)",
    "customers_historyreview_append(bigint, text, text, jsonb, bigint, inet, text)",
)
_FORBIDDEN = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
_ORDINARY = "SELECT, INSERT, UPDATE, DELETE"


def _tables(connection: BaseDatabaseWrapper) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
        return [row[0] for row in cursor.fetchall()]


def grant_app_privileges(*, owner: BaseDatabaseWrapper, app_role: str) -> list[str]:
    """As the owner, give ``app_role`` what the portal needs and nothing more; idempotent,
    run after every migrate so new tables are covered. Returns the statements run."""
    quote = owner.ops.quote_name
    role = quote(app_role)
    statements = [f"GRANT USAGE ON SCHEMA {quote('public')} TO {role}"]
    for table in _tables(owner):
        name = quote(table)
        statements.append(f"REVOKE ALL ON {name} FROM {role}")
        if table in AUDIT_TABLE_PRIVILEGES:
            if AUDIT_TABLE_PRIVILEGES[table]:
                statements.append(f"GRANT {', '.join(AUDIT_TABLE_PRIVILEGES[table])} ON {name} TO {role}")
        elif table == "django_migrations":
            statements.append(f"GRANT SELECT ON {name} TO {role}")
        else:
            statements.append(f"GRANT {_ORDINARY} ON {name} TO {role}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quote('public')} TO {role}")
    statements.extend(f"GRANT EXECUTE ON FUNCTION {function} TO {role}" for function in APPEND_FUNCTIONS)
    # One transaction: a server already serving never sees the moment between REVOKE and GRANT.
    with transaction.atomic(using=owner.alias), owner.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return statements


def role_problems(connection: BaseDatabaseWrapper) -> list[str]:
    """Why the role ``connection`` uses could switch off or rewrite the audit log, if it could."""
    if connection.vendor != "postgresql":
        return []
    problems = []
    tables = list(AUDIT_TABLE_PRIVILEGES)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        role, superuser = cursor.fetchone()
        if superuser:
            return [f"the database role {role!r} is a superuser"]
        # Owning a table, or being able to become its owner, allows DISABLE TRIGGER.
        cursor.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_has_role(current_user, c.relowner, 'MEMBER') "
            "ORDER BY c.relname",
            [tables],
        )
        for table, owner in cursor.fetchall():
            problems.append(f"the database role {role!r} owns {table} (or may act as its owner {owner!r})")
        # Owning an append function, or acting as its owner, allows replacing it.
        cursor.execute(
            "SELECT p.proname FROM pg_proc p WHERE p.oid = ANY(%s::regprocedure[]) "
            "AND pg_has_role(current_user, p.proowner, 'MEMBER') ORDER BY p.proname",
            [list(APPEND_FUNCTIONS)],
        )
        for (function,) in cursor.fetchall():
            problems.append(f"the database role {role!r} owns the audit function {function} (or may act as its owner)")
        # The append functions run as the owner with their own schema on the search_path: a
        # role that may create objects there can add a closer match for a name they call
        # (public.to_json(text), an operator text || bigint) and run its code as the owner.
        cursor.execute(
            "SELECT DISTINCT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.oid = ANY(%s::regprocedure[]) AND has_schema_privilege(current_user, n.oid, 'CREATE') "
            "ORDER BY n.nspname",
            [list(APPEND_FUNCTIONS)],
        )
        for (schema,) in cursor.fetchall():
            problems.append(
                f"the database role {role!r} may create objects in schema {schema}, where the audit append "
                "functions look up the names they call (REVOKE CREATE ON SCHEMA ... FROM PUBLIC and from this role)"
            )
        for table, allowed in AUDIT_TABLE_PRIVILEGES.items():
            for privilege in (p for p in _FORBIDDEN if p not in allowed):
                cursor.execute("SELECT has_table_privilege(current_user, to_regclass(%s), %s)", [table, privilege])
                if cursor.fetchone()[0]:
                    problems.append(f"the database role {role!r} has {privilege} on {table}")
    return problems
