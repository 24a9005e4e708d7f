"""accounts/session_store.py: the session, its user and their permissions in one statement,
read afresh on every request, so that every change to who someone is counts at once."""

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.middleware import AuthenticationMiddleware
from accounts.models import Session
from accounts.session_store import SessionStore
from customers.models import LookupEvent

pytestmark = pytest.mark.django_db

SIGN_IN_PAGE = "/accounts/login/"


def _signed_in(client, user):
    client.force_login(user)
    return client


def test_a_signed_in_page_reads_session_user_and_permissions_in_one_statement(client, sales_user):
    _signed_in(client, sales_user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/")
    assert page.status_code == 200 and "sam.sales" in page.content.decode()
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    who = [sql for sql in reads if "auth_" in sql or "session" in sql]
    assert len(who) == 1, who


def test_permissions_come_from_groups_and_from_the_user_directly(client, make_user):
    ivy = make_user("ivy.installer", "Installers")
    ivy.user_permissions.add(Permission.objects.get(codename="view_lookupevent"))
    _signed_in(client, ivy)
    assert client.get("/projects/2143/").status_code == 200  # the group's permission
    assert client.get("/history/").status_code == 200  # her own


def test_the_old_cookie_is_signed_out_after_sign_out(client, sales_user):
    _signed_in(client, sales_user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.post("/accounts/logout/")
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    assert client.get("/projects/2143/")["Location"].startswith(SIGN_IN_PAGE)
    assert not Session.objects.filter(session_key=cookie).exists()


def test_a_password_changed_elsewhere_signs_this_session_out(client, sales_user):
    _signed_in(client, sales_user)
    sales_user.set_password("a-new-password-456")
    sales_user.save()
    assert client.get("/projects/2143/")["Location"].startswith(SIGN_IN_PAGE)


def test_a_deactivated_user_is_signed_out_at_the_next_request(client, sales_user):
    _signed_in(client, sales_user)
    sales_user.is_active = False
    sales_user.save()
    assert client.get("/projects/2143/")["Location"].startswith(SIGN_IN_PAGE)


def test_deleting_a_user_ends_their_sessions(client, sales_user):
    _signed_in(client, sales_user)
    sales_user.delete()
    assert not Session.objects.exists()
    assert client.get("/projects/2143/")["Location"].startswith(SIGN_IN_PAGE)


def test_an_expired_session_is_signed_out(client, sales_user):
    _signed_in(client, sales_user)
    Session.objects.update(expire_date="2000-01-01T00:00:00Z")
    assert client.get("/projects/2143/")["Location"].startswith(SIGN_IN_PAGE)


def test_a_session_for_an_unknown_backend_is_signed_out(client, sales_user):
    _signed_in(client, sales_user)
    store = client.session
    store["_auth_user_backend"] = "django.contrib.auth.backends.RemoteUserBackend"
    store.save()
    assert client.get("/projects/2143/")["Location"].startswith(SIGN_IN_PAGE)


def test_a_superuser_keeps_every_permission(client, make_user):
    _signed_in(client, make_user("root", None, is_superuser=True, is_staff=True))
    assert client.get("/projects/2143/").status_code == 200
    assert client.get("/history/").status_code == 200


@pytest.mark.parametrize(
    "cookie", ['"abcdefgh\\000ijkl"', "x" * 5000, "' OR 1=1 --", "ÄÖÜäöü12345678", "ABCDEFGH12345678"]
)
def test_a_garbage_session_cookie_is_no_session_never_an_error(client, cookie):
    page = client.get("/projects/2143/", HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}={cookie}")
    assert page.status_code == 302 and page["Location"].startswith(SIGN_IN_PAGE)


def test_a_rotated_secret_key_keeps_people_signed_in_through_its_fallback(client, sales_user, settings):
    old_key = settings.SECRET_KEY
    _signed_in(client, sales_user)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-brand-new-secret-key-" + "x" * 40, [old_key]
    assert client.get("/projects/2143/").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get("/projects/2143/").status_code == 200  # the session was re-signed with the new key


def test_clearsessions_removes_expired_sessions(client, sales_user, make_user):
    _signed_in(client, sales_user)
    _signed_in(Client(), make_user("ivy.installer", "Installers"))
    Session.objects.filter(user=sales_user).update(expire_date="2000-01-01T00:00:00Z")
    call_command("clearsessions")
    assert list(Session.objects.values_list("user__username", flat=True)) == ["ivy.installer"]


def test_a_session_row_without_its_user_column_still_signs_its_user_in(client, sales_user):
    """Django's async session API (``asave``) writes the row without the user column. The
    statement then brings no user, and Django reads the user itself: the same page, signed in."""
    _signed_in(client, sales_user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    async_to_sync(SessionStore(key).asave)()
    assert Session.objects.get(session_key=key).user_id is None

    page = client.get("/")

    assert page.status_code == 200 and "sam.sales" in page.content.decode()


def test_a_lookup_reads_who_is_asking_and_their_roles_in_one_statement(client, sales_user):
    _signed_in(client, sales_user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/projects/2143/")
    assert page.status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    who = [sql for sql in reads if "auth_" in sql or "session" in sql]
    assert len(who) == 1, who
    assert LookupEvent.objects.get().role == "Sales"


def test_the_role_on_each_audit_row_is_the_one_held_at_that_request(client, sales_user):
    _signed_in(client, sales_user)
    client.get("/projects/2143/")
    sales_user.groups.add(Group.objects.get(name="Admins"))
    client.get("/projects/2143/")
    sales_user.groups.remove(Group.objects.get(name="Sales"))
    client.get("/projects/2143/")
    assert list(LookupEvent.objects.order_by("sequence").values_list("role", flat=True)) == [
        "Sales",
        "Sales, Admins",
        "Admins",
    ]


def test_a_role_taken_away_refuses_the_very_next_lookup_and_says_so_on_the_record(client, sales_user):
    _signed_in(client, sales_user)
    assert client.get("/projects/2143/").status_code == 200
    sales_user.groups.clear()
    assert client.get("/projects/2143/").status_code == 403
    assert list(LookupEvent.objects.order_by("sequence").values_list("outcome", "role")) == [
        ("found", "Sales"),
        ("not_authorised", ""),
    ]


def test_the_user_the_session_brings_is_the_one_the_orm_would_read(client, sales_user):
    """Every column converted as the ORM converts it, and the same state: read from the
    session's database, not a new user to insert."""
    _signed_in(client, sales_user)
    loaded = SessionStore(client.cookies[settings.SESSION_COOKIE_NAME].value).loaded_user()
    read = get_user_model().objects.get(pk=sales_user.pk)
    columns = [field.attname for field in get_user_model()._meta.concrete_fields]
    assert [getattr(loaded, name) for name in columns] == [getattr(read, name) for name in columns]
    assert (loaded._state.db, loaded._state.adding) == (read._state.db, read._state.adding) == ("default", False)


def test_a_store_without_a_session_names_no_user():
    assert SessionStore().loaded_user() is None
    assert SessionStore("nosuchsessionkey0000").loaded_user() is None


def test_a_flushed_session_names_no_user(client, sales_user):
    _signed_in(client, sales_user)
    store = SessionStore(client.cookies[settings.SESSION_COOKIE_NAME].value)
    assert store.loaded_user() == sales_user
    store.flush()
    assert store.loaded_user() is None


def test_a_key_cycled_before_the_user_is_read_still_gives_the_signed_in_user(client, sales_user):
    """The user read with the old key is not handed on after ``cycle_key``: Django reads
    the user the session names afresh (the same person, for a key changed mid-request)."""
    _signed_in(client, sales_user)
    request = RequestFactory().get("/")
    request.session = SessionStore(client.cookies[settings.SESSION_COOKIE_NAME].value)
    AuthenticationMiddleware(lambda request: None).process_request(request)
    request.session.cycle_key()
    assert request.user.is_authenticated and request.user.pk == sales_user.pk
