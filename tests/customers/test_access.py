"""customers/access.py: which role each kind of page needs, and a refusal that names it."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.http import HttpResponse
from django.test import RequestFactory

from customers import access

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "may_look_up", "may_review"),
    [("Sales", True, False), ("Installers", True, False), ("Admins", True, True), (None, False, False)],
)
def test_each_role_holds_exactly_its_permissions(make_user, role, may_look_up, may_review):
    user = make_user("someone", role)
    for permission, roles, allowed in (
        (access.LOOK_UP_PERMISSION, access.LOOK_UP_ROLES, may_look_up),
        (access.REVIEW_PERMISSION, access.REVIEW_ROLES, may_review),
    ):
        if allowed:
            access.require_role(user, permission, roles)
        else:
            with pytest.raises(access.RoleRequired) as refused:
                access.require_role(user, permission, roles)
            assert refused.value.roles == roles


def test_the_refusal_names_the_roles_that_would_be_allowed():
    assert str(access.RoleRequired(access.LOOK_UP_ROLES)) == "Needs one of the roles Sales, Installers, Admins."
    assert str(access.RoleRequired(access.REVIEW_ROLES, "Only admins.")) == "Only admins."


def test_the_decorator_refuses_before_the_view_runs_and_passes_arguments_through(make_user):
    ran = []

    @access.role_required(access.REVIEW_PERMISSION, access.REVIEW_ROLES)
    def history(request, *args, **kwargs):
        """The history page."""
        ran.append((args, kwargs))
        return HttpResponse("history")

    request = RequestFactory().get("/history/")
    request.user = make_user("sam", "Sales")
    with pytest.raises(access.RoleRequired) as refused:
        history(request, 7, project=2143)
    assert refused.value.roles == ("Admins",) and ran == []

    request.user = make_user("ada", "Admins")
    assert history(request, 7, project=2143).content == b"history"
    assert ran == [((7,), {"project": 2143})]
    assert history.__name__ == "history" and history.__doc__ == "The history page."


@pytest.mark.parametrize(
    ("roles", "said"),
    [
        (("Admins",), "Admins"),
        (["Sales", "Admins"], "Sales or Admins"),
        (("Sales", "Installers", "Admins"), "Sales, Installers or Admins"),
    ],
)
def test_the_403_page_says_the_roles_as_a_person_would(roles, said):
    assert access.either(roles) == said


def test_held_roles_are_the_portal_roles_in_their_own_order(make_user):
    user = make_user("ada", "Admins")
    user.groups.add(Group.objects.get(name="Sales"), Group.objects.create(name="Marketing"))
    assert access.held_roles(user) == ["Sales", "Admins"]
    assert access.held_roles(make_user("nora", None)) == []
    assert access.held_roles(AnonymousUser()) == []


@pytest.mark.parametrize(
    ("roles", "superuser", "written"),
    [
        (["Sales"], False, "Sales"),
        (["Admins", "Installers"], False, "Installers, Admins"),
        ([], True, "superuser"),
        (["Sales"], True, "Sales"),
        ([], False, ""),
    ],
)
def test_the_role_at_the_time_is_what_the_audit_row_says(make_user, roles, superuser, written):
    user = make_user("someone", None, is_superuser=superuser)
    user.groups.add(*Group.objects.filter(name__in=roles))
    assert access.role_at_the_time(user) == written


def test_the_role_at_the_time_is_read_once_per_request(make_user, django_assert_num_queries):
    user = make_user("sam", "Sales")
    with django_assert_num_queries(1):
        assert access.role_at_the_time(user) == access.role_at_the_time(user) == "Sales"
    assert access.role_at_the_time(AnonymousUser()) == ""


def test_a_user_the_session_brought_has_their_roles_read_with_it_and_not_again(
    client, make_user, django_assert_num_queries
):
    from accounts.session_store import SessionStore

    user = make_user("ada", "Admins")
    user.groups.add(Group.objects.get(name="Sales"), Group.objects.create(name="Marketing"))
    client.force_login(user)
    loaded = SessionStore(client.session.session_key).loaded_user()
    with django_assert_num_queries(0):
        assert access.held_roles(loaded) == ["Sales", "Admins"]
        assert access.role_at_the_time(loaded) == "Sales, Admins"
