"""The audit log's own guarantees (issue "history" adds the review side)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db.models.deletion import ProtectedError

from customers.lookups import look_up_customer
from customers.models import AuditLogIsAppendOnly, LookupEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(sales_user) -> LookupEvent:
    return look_up_customer(user=sales_user, project_id=2143).event


def test_an_event_cannot_be_changed(event):
    event.project_id = 1
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    assert LookupEvent.objects.get().project_id == 2143


def test_events_cannot_be_updated_or_deleted_in_bulk(event):
    with pytest.raises(AuditLogIsAppendOnly):
        LookupEvent.objects.filter(pk=event.pk).update(outcome="found")
    with pytest.raises(AuditLogIsAppendOnly):
        LookupEvent.objects.all().delete()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    assert LookupEvent.objects.count() == 1


def test_a_user_with_history_cannot_be_deleted(event, sales_user):
    with pytest.raises(ProtectedError):
        sales_user.delete()


def test_the_username_is_a_snapshot(event, sales_user):
    sales_user.username = "renamed"
    sales_user.save()
    assert LookupEvent.objects.get().username == "sam.sales"
    assert str(LookupEvent.objects.get()) == "sam.sales looked up project 2143: found"


def test_no_personal_details_are_stored(event):
    stored = " ".join(str(value) for value in LookupEvent.objects.values().get().values())
    for detail in ("Judy", "Matherson", "0411", "61411549054", "judymatherson", "Mono Drive"):
        assert detail not in stored


def test_the_roles_exist_with_their_permissions():
    def codenames(role: str) -> set[str]:
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    assert codenames("Sales") == codenames("Installers") == {"look_up_customer"}
    assert codenames("Admins") == {"look_up_customer", "view_lookupevent"}
    assert Permission.objects.filter(codename="look_up_customer").count() == 1


def test_the_admin_is_read_only_even_for_superusers(client, django_user_model, event):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)
    assert client.get("/admin/customers/lookupevent/").status_code == 200
    assert client.get("/admin/customers/lookupevent/add/").status_code == 403
    assert client.post(f"/admin/customers/lookupevent/{event.pk}/delete/").status_code == 403
    response = client.post(f"/admin/customers/lookupevent/{event.pk}/change/", {"project_id": 1})
    assert response.status_code == 403
    assert LookupEvent.objects.get().project_id == 2143


@pytest.mark.parametrize("model", ["lookupevent", "historyreview", "auditanchor"])
def test_audit_records_have_no_bulk_actions_in_the_admin(client, django_user_model, event, model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)
    page = client.get(f"/admin/customers/{model}/").content.decode()
    assert 'name="action"' not in page
    assert client.get(f"/admin/customers/{model}/add/").status_code == 403


def test_the_admin_lists_events_without_counting_them_all(client, django_user_model, event):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)
    with CaptureQueriesContext(connection) as queries:
        client.get("/admin/customers/lookupevent/?q=sam.sales")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert all("WHERE" in sql.upper() for sql in counts), counts  # the filtered count only
