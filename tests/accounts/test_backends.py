"""accounts/backends.py: who may do what, read fresh on every request in one query."""

import pytest
from django.contrib.auth.models import Group, Permission

from customers.models import LookupEvent

pytestmark = pytest.mark.django_db


def test_it_reads_a_users_own_and_group_permissions_in_one_query(make_user, django_assert_num_queries):
    user = make_user("ivy.installer", "Installers")
    user.user_permissions.add(Permission.objects.get(codename="view_lookupevent"))
    user = type(user).objects.get(pk=user.pk)
    with django_assert_num_queries(1):
        assert user.has_perm("customers.look_up_customer")  # from the group
        assert user.has_perm("customers.view_lookupevent")  # the user's own
        assert not user.has_perm("customers.delete_lookupevent")


def test_it_gives_no_permission_to_an_inactive_user_and_every_one_to_a_superuser(make_user):
    assert not make_user("gone", "Sales", is_active=False).has_perm("customers.look_up_customer")
    assert make_user("root", None, is_superuser=True).has_perm("customers.delete_lookupevent")


def test_it_refuses_the_next_lookup_once_the_role_is_removed(client, sales_user):
    client.force_login(sales_user)
    assert client.get("/projects/2143/").status_code == 200
    sales_user.groups.remove(Group.objects.get(name="Sales"))
    assert client.get("/projects/2144/").status_code == 403
    assert LookupEvent.objects.order_by("-sequence").first().outcome == "not_authorised"
