"""The customer access report (issue 26): an index that finds every lookup that showed
one customer, in the chain's order, and the review record's kind ``access_report``.
A change of choices alone alters no table, so SQLite keeps the append-only triggers."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0009_append_function"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="historyreview",
            name="kind",
            field=models.CharField(
                choices=[
                    ("view", "Viewed history"),
                    ("export", "Exported CSV"),
                    ("admin_list", "Listed lookups in the admin"),
                    ("admin_view", "Opened a lookup in the admin"),
                    ("kept_on_device", "Kept customers' details on a device"),
                    ("access_report", "Made a customer access report"),
                ],
                editable=False,
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="lookupevent",
            index=models.Index(fields=["customer_id", "sequence"], name="lookup_customer_seq_idx"),
        ),
    ]
