"""The audit log's own guarantees (issue "history" adds the review side)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db.models.deletion import ProtectedError

from customers.audit.log import record_review
from customers.lookups import look_up_customer
from customers.models import AuditAnchor, AuditLogIsAppendOnly, HistoryReview, LookupEvent
from customers.outcomes import Outcome

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


def test_review_records_cannot_be_changed_or_deleted_through_the_orm(admin_user_role):
    review = record_review(user=admin_user_role, kind=HistoryReview.Kind.EXPORT, detail={"user": "sam"}, rows=3)
    review.rows = 0
    with pytest.raises(AuditLogIsAppendOnly):
        review.save()
    with pytest.raises(AuditLogIsAppendOnly):
        review.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        HistoryReview.objects.filter(pk=review.pk).update(rows=0)
    with pytest.raises(AuditLogIsAppendOnly):
        HistoryReview.objects.all().delete()
    stored = HistoryReview.objects.get()
    assert (stored.sequence, stored.rows, stored.detail) == (1, 3, {"user": "sam"})


def test_prune_records_cannot_be_changed_or_deleted_through_the_orm():
    anchor = AuditAnchor.objects.create(
        username="ada", through_sequence=5, through_hash="a" * 64, events_pruned=5, older_than_days=30
    )
    anchor.events_pruned = 0
    with pytest.raises(AuditLogIsAppendOnly):
        anchor.save()
    with pytest.raises(AuditLogIsAppendOnly):
        anchor.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditAnchor.objects.all().delete()
    assert AuditAnchor.objects.get().events_pruned == 5


def test_it_tells_the_portal_refusal_from_solar_proofs(sales_user, no_role_user):
    """The portal refusing a staff member is a different fact from Solar Proof refusing the portal."""
    with pytest.raises(Exception, match="no role"):
        look_up_customer(user=no_role_user, project_id=2143)
    look_up_customer(user=sales_user, project_id=9403)  # the sandbox answers UNAUTHORISED for 9403
    outcomes = dict(LookupEvent.objects.values_list("username", "outcome"))
    assert outcomes == {"nora.norole": Outcome.NOT_AUTHORISED, "sam.sales": Outcome.UPSTREAM_NOT_AUTHORISED}


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


def test_the_admins_list_and_detail_pages_write_review_records(client, django_user_model, event, sales_user):
    look_up_customer(user=sales_user, project_id=2144)
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)
    listed = client.get("/admin/customers/lookupevent/", {"outcome": "found"}, REMOTE_ADDR="10.9.8.7")
    assert listed.status_code == 200 and "2144" in listed.content.decode()
    opened = client.get(f"/admin/customers/lookupevent/{event.pk}/change/")
    assert opened.status_code == 200 and "2143" in opened.content.decode()
    reviews = list(HistoryReview.objects.order_by("sequence").values("username", "kind", "detail", "rows", "ip"))
    assert reviews == [
        {"username": "boss", "kind": "admin_list", "detail": {"outcome": "found"}, "rows": 2, "ip": "10.9.8.7"},
        {"username": "boss", "kind": "admin_view", "detail": {"sequence": 1}, "rows": 1, "ip": "127.0.0.1"},
    ]
    assert "Listed lookups in the admin" in client.get("/history/reviews/").content.decode()


def test_the_admin_records_no_review_when_it_shows_no_event(client, django_user_model, admin_user_role, event):
    client.force_login(admin_user_role)  # an Admin without staff status: no admin site
    assert client.get("/admin/customers/lookupevent/").status_code == 302
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)
    assert client.get("/admin/customers/lookupevent/999999/change/").status_code == 302  # not found
    assert not HistoryReview.objects.exists()
