"""The audit log that holds up (issue 13): Solar Proof's refusal gets its own outcome,
lookups may carry a reason, prune records carry their Ed25519 key ID, and review
records become a hash chain (sequence, prev_hash, hash; the next migrations fill them
for existing rows and make the table append-only).

Every change to customers_lookupevent here is a nullable column or a choices-only
change, so SQLite alters it in place and keeps its append-only triggers."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_auth_method"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="historyreview",
            options={"ordering": ["-sequence"], "verbose_name": "history review"},
        ),
        migrations.RenameField(
            model_name="historyreview",
            old_name="filters",
            new_name="detail",
        ),
        migrations.AddField(
            model_name="auditanchor",
            name="key_id",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="The Ed25519 key that signed this prune; empty for the legacy HMAC scheme.",
                max_length=32,
                verbose_name="key ID",
            ),
        ),
        migrations.AlterField(
            model_name="historyreview",
            name="detail",
            field=models.JSONField(
                default=dict,
                editable=False,
                help_text="What was read: the history filters, the admin's query, an event's sequence, or the projects.",
            ),
        ),
        migrations.AddField(
            model_name="historyreview",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="historyreview",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64, verbose_name="previous hash"),
        ),
        migrations.AddField(
            model_name="historyreview",
            name="sequence",
            field=models.PositiveBigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="lookupevent",
            name="reason",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="Why the staff member looked the customer up, in their words or a picked reason.",
                max_length=200,
                null=True,
                verbose_name="reason",
            ),
        ),
        migrations.AlterField(
            model_name="auditanchor",
            name="signature",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="Ed25519 signature (base64) of the prune statement; legacy rows hold an HMAC-SHA256 in hex.",
                max_length=128,
            ),
        ),
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
                ],
                editable=False,
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="lookupevent",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("found", "Found"),
                    ("project_not_found", "Project not found"),
                    ("no_customer", "No customer assigned"),
                    ("not_authorised", "Not authorised"),
                    ("upstream_not_authorised", "Solar Proof refused (unauthorised)"),
                    ("api_key_invalid", "API key invalid"),
                    ("invalid_parameters", "Invalid parameters"),
                    ("upstream_error", "Upstream error"),
                    ("upstream_unavailable", "Upstream unavailable"),
                    ("rate_limited", "Rate limited"),
                ],
                editable=False,
                max_length=32,
            ),
        ),
    ]
