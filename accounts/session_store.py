"""Database sessions that bring their user along: one statement per request.

Django's database session backend reads the session, then ``auth.get_user`` reads the
user, then the first permission check reads the user's permissions: three queries, most
of their cost the ORM's building, on every signed-in request. Here the session row is
read LEFT JOINed with its user (``accounts.Session.user_id``, written with the session),
the permissions the user holds directly and through groups, and the names of the user's
groups (their roles, which each audit row records), in one statement. The
user is handed to ``accounts.middleware.AuthenticationMiddleware``, which still applies
every check of ``django.contrib.auth.get_user`` (backend, active, LOCAL_LOGIN, the
session's password hash). Everything is read afresh on every request, as before: a
sign-out, a deactivation or a removed role counts on the very next request.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
from django.utils import timezone
from django.utils.functional import cached_property

from accounts.models import Session


class SessionStore(DatabaseSessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._user: Any = None

    @classmethod
    def get_model_class(cls) -> type[Session]:
        return Session

    def _validate_session_key(self, key: str | None) -> bool:
        """Only keys as Django makes them (lowercase letters and digits): anything else in
        the cookie (a NUL byte the database would refuse, say) is no session at all."""
        return bool(key) and _SESSION_KEY.fullmatch(key) is not None

    def create_model_instance(self, data: dict[str, Any]) -> Session:
        session = super().create_model_instance(data)
        try:
            session.user_id = int(data[SESSION_KEY])
        except (KeyError, TypeError, ValueError):
            session.user_id = None
        return session

    def loaded_user(self) -> Any:
        """The user the session's row named when it was read (None without one); their
        permissions and group names are filled in, so ``has_perm`` and the role written on
        an audit row (``customers.access.held_roles``) ask the database nothing more."""
        self._get_session()  # read once per request, as Django's stores do
        return self._user

    def _get_session_from_db(self) -> Session | None:
        self._user = None
        with connections[self._database].cursor() as cursor:
            now = connections[self._database].ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(_statement(self._database), [self.session_key, now] * 3)
            rows = cursor.fetchall()
        session_row = next((row for row in rows if row[0] is not None), None)
        if session_row is None:
            self._session_key = None
            return None
        session_data, *user_values = session_row[: 1 + len(_USER_FIELDS)]
        if user_values[0] is not None:
            permissions = [row[-2:] for row in rows if row[-3] == _PERMISSION and row[-1] is not None]
            groups = {row[-1] for row in rows if row[-3] == _GROUP}
            self._user = _user(self._database, user_values, permissions, groups)
        return Session(session_key=self.session_key, session_data=session_data)

    @cached_property
    def _database(self) -> str:
        return router.db_for_read(Session)

    def flush(self) -> None:
        super().flush()
        self._user = None

    def cycle_key(self) -> None:
        super().cycle_key()
        self._user = None


_SESSION_KEY = re.compile(r"[a-z0-9]{8,40}")
# What a row of the statement carries after the session and user columns.
_PERMISSION, _GROUP = "p", "g"
_USER_FIELDS = list(get_user_model()._meta.concrete_fields)


@functools.cache
def _converters(database: str) -> list[tuple[Any, list[Any]]]:
    """Each user column and the converters the ORM applies to it on this database."""
    connection, table = connections[database], get_user_model()._meta.db_table
    columns = [field.get_col(table) for field in _USER_FIELDS]
    return [(col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)) for col in columns]


def _user(database: str, values: list[Any], permissions: list[tuple[str, str]], groups: set[str]) -> Any:
    """The user from their columns, converted as the ORM converts them, with the names of
    their groups (``group_names``, read by ``customers.access.held_roles``)."""
    connection = connections[database]
    converted = []
    for (column, converters), value in zip(_converters(database), values, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    user = get_user_model().from_db(database, [field.attname for field in _USER_FIELDS], converted)
    user.group_names = frozenset(groups)
    if not user.is_superuser:
        # Django's ModelBackend (accounts/backends.py) answers has_perm from this cache.
        # A superuser's perms are all perms; Django reads those itself if ever asked.
        user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in permissions}
    return user


@functools.cache
def _statement(database: str) -> str:
    """The session row with its user and one row per permission of the user's groups,
    then one row per permission given to the user directly, then one per group the user is
    in (no session data on those; the third-last column says which kind a row is).
    Each part follows indexes from the session key (EXPLAIN on PostgreSQL with 20,000 users
    and 100,000 sessions); only auth_permission, a few dozen rows, is read whole. Planning
    it costs more than running it: PostgreSQL prepares it (settings: prepare_threshold)."""
    quote = connections[database].ops.quote_name
    user = get_user_model()._meta
    own = user.get_field("user_permissions").remote_field.through._meta
    groups = user.get_field("groups").remote_field.through._meta
    granted = Group.permissions.through._meta

    def column(meta: Any, name: str) -> str:
        return quote(meta.get_field(name).column)

    session = f"{quote(Session._meta.db_table)} s"
    permission = (
        f"{quote(Permission._meta.db_table)} p ON p.id = {{}} "
        f"LEFT JOIN {quote(ContentType._meta.db_table)} ct ON ct.id = p.content_type_id "
    )
    where = "WHERE s.session_key = %s AND s.expire_date > %s"
    by_group, given = f"gp.{column(granted, 'permission')}", f"up.{column(own, 'permission')}"
    user_columns = [f"u.{quote(field.column)}" for field in _USER_FIELDS]
    no_user = ", ".join(["NULL"] * len(user_columns))
    return (
        f"SELECT s.session_data, {', '.join(user_columns)}, '{_PERMISSION}', ct.app_label, p.codename "  # noqa: S608 - names from the models
        f"FROM {session} "
        f"LEFT JOIN {quote(user.db_table)} u ON u.{quote(user.pk.column)} = s.user_id "
        f"LEFT JOIN ({quote(groups.db_table)} ug JOIN {quote(granted.db_table)} gp "
        f"  ON gp.{column(granted, 'group')} = ug.{column(groups, 'group')}) "
        f"  ON ug.{column(groups, 'user')} = u.{quote(user.pk.column)} "
        f"LEFT JOIN {permission.format(by_group)}"
        f"{where} "
        "UNION ALL "
        f"SELECT NULL, {no_user}, '{_PERMISSION}', ct.app_label, p.codename "
        f"FROM {session} "
        f"JOIN {quote(own.db_table)} up ON up.{column(own, 'user')} = s.user_id "
        f"JOIN {permission.format(given)}"
        f"{where} "
        "UNION ALL "
        f"SELECT NULL, {no_user}, '{_GROUP}', NULL, g.{quote(Group._meta.get_field('name').column)} "
        f"FROM {session} "
        f"JOIN {quote(groups.db_table)} ug ON ug.{column(groups, 'user')} = s.user_id "
        f"JOIN {quote(Group._meta.db_table)} g ON g.{quote(Group._meta.pk.column)} = ug.{column(groups, 'group')} "
        f"{where}"
    )
