"""PostgreSQL plans the portal's repeated statements once per connection."""

import pytest
from django.db import connection


@pytest.mark.django_db
def test_repeated_lookups_reuse_prepared_statements(client, sales_user):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL setting")
    client.force_login(sales_user)
    for _ in range(6):
        assert client.get("/projects/2143/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = " ".join(row[0] for row in cursor.fetchall())
    assert "customers_lookupevent_append" in prepared
    assert "auth_permission" in prepared
