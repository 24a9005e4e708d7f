import copy
import importlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection

from accounts import oidc
from customers.lookups import _client
from customers.upstream import sandbox
from solarproof_portal import circuits
from tests.support.identity_provider import CLIENT_ID, CLIENT_SECRET, IdentityProvider

ROLES = ("Sales", "Installers", "Admins")


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[sandbox.SandboxHTTPServer]:
    """The Solar Proof sandbox as a real HTTP server on loopback, for the whole run."""
    server = sandbox.serve(api_key=django_settings.SOLARPROOF_API_KEY)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def portal_upstream(settings, sandbox_server: sandbox.SandboxHTTPServer) -> sandbox.SandboxHTTPServer:
    """Every test's portal talks to the sandbox over HTTP, with a short budget."""
    settings.SOLARPROOF_API_URL = sandbox_server.url
    settings.SOLARPROOF_DEMO = False
    settings.SOLARPROOF_TIMEOUT = 2.0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    circuits.reset_all()
    cache.clear()
    _client.cache_clear()
    return sandbox_server


@pytest.fixture(scope="session")
def identity_provider_server() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.stop()


ROLE_MAP = {"portal-sales": "Sales", "portal-installers": "Installers", "portal-admins": "Admins"}


@pytest.fixture
def identity_provider(settings, identity_provider_server: IdentityProvider) -> IdentityProvider:
    """The tests' OpenID provider on loopback, and the portal set up to sign in through it."""
    identity_provider_server.reset()
    settings.OIDC_ISSUER = identity_provider_server.issuer
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_BUTTON_LABEL = "Sign in with Test Provider"
    settings.OIDC_ROLE_CLAIM = "groups"
    settings.OIDC_ROLE_MAP = ROLE_MAP
    # As settings.py does for OIDC_ISSUER: sign-out's redirect to the provider is allowed.
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = ["'self'", identity_provider_server.issuer]
    settings.CONTENT_SECURITY_POLICY = policy
    oidc._provider.cache_clear()
    return identity_provider_server


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Path:
    """collectstatic once per run, for tests that start gunicorn with production settings."""
    from tests.support.processes import collect_static

    return collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture
def committed_db(transactional_db) -> Iterator[None]:
    """For tests whose writes must really commit (threads, processes, a live server).
    An earlier such test's flush removed the roles the data migration made, so they are
    made again, by the migration's own code. Afterwards the audit log is emptied
    through the prune's gate: the triggers refuse the usual flush of a non-empty log
    (lookup events, review records, prune records)."""
    importlib.import_module("customers.migrations.0002_roles").create_roles(django_apps, None)
    yield
    from customers.audit.prune import open_gate

    with open_gate(), connection.cursor() as cursor:
        for table in ("customers_lookupevent", "customers_historyreview", "customers_auditanchor"):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")


@pytest.fixture
def make_user(django_user_model) -> Callable[..., object]:
    def make(username: str = "sam", role: str | None = "Sales", **fields: object) -> object:
        user = django_user_model.objects.create_user(username=username, password="correct-horse-battery", **fields)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def sales_user(make_user):
    return make_user("sam.sales", "Sales")


@pytest.fixture
def installer_user(make_user):
    return make_user("ivy.installer", "Installers")


@pytest.fixture
def admin_user_role(make_user):
    return make_user("ada.admin", "Admins")


@pytest.fixture
def no_role_user(make_user):
    return make_user("nora.norole", None)


# Everything the portal logs during the whole run, checked at the end for secrets and
# customers' details. werkzeug's lines are pytest-httpserver's own (the fake upstream).
_LOG_CHECK_EXCLUDED = ("werkzeug",)


class _RunLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(_LOG_CHECK_EXCLUDED):
            try:
                self.lines.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")
            except Exception:
                self.lines.append(f"{record.name}: {record.msg!r}")


def _personal_details() -> set[str]:
    from customers.upstream.sandbox_data import CUSTOMERS

    details = set()
    for customer in CUSTOMERS.values():
        for field in ("phone1", "phone2", "email", "siteAddress"):
            value = str(customer.get(field) or "")
            if len(value) >= 6:
                details.add(value)
    return details


@pytest.fixture(scope="session", autouse=True)
def no_secrets_or_personal_details_in_the_logs() -> Iterator[None]:
    handler = _RunLog()
    logging.getLogger().addHandler(handler)
    yield
    if not handler.lines:
        # A run of a few quiet tests logs nothing, which is fine; but the check must still
        # hear the portal's own loggers, or it would prove nothing on a full run either.
        logging.getLogger("customers.lookups").warning("log check: the portal's loggers reach this check")
    logging.getLogger().removeHandler(handler)
    secrets = {django_settings.SOLARPROOF_API_KEY, "s3cret-key-XYZ-123", CLIENT_SECRET} | _personal_details()
    leaks = [line for line in handler.lines for secret in secrets if secret in line]
    assert handler.lines, "the portal's loggers do not reach the log check: it would prove nothing"
    assert not leaks, f"{len(leaks)} log lines hold a secret or a customer's details, e.g. {leaks[0][:300]}"


@pytest.fixture(scope="session")
def make_run_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The portal configured exactly as `make run` configures it (DEBUG on, demo mode,
    sandbox): its base URL and the file its log lines go to."""
    from tests.support.processes import make_run_portal

    folder = tmp_path_factory.mktemp("make-run")
    log = folder / "runserver.log"
    with make_run_portal(folder / "db.sqlite3", log=log) as url:
        yield url, log


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """mutmut (make mutants) tests several mutants at once, each in a process of its own:
    each gets a test database of its own."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        from pytest_django.fixtures import _set_suffix_to_test_databases

        _set_suffix_to_test_databases(suffix=f"mutant{os.getpid()}")
