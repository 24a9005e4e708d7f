"""How the user signed in, on every audit row. Nullable, so SQLite adds the column in
place instead of rebuilding the table, which would drop the append-only triggers."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_append_only_triggers"),
    ]

    operations = [
        migrations.AddField(
            model_name="lookupevent",
            name="auth_method",
            field=models.CharField(
                blank=True,
                choices=[("oidc", "Company account"), ("local", "Username and password")],
                editable=False,
                help_text="How the user had signed in. Empty for the command line and for lookups made before it was recorded.",
                max_length=8,
                null=True,
                verbose_name="signed in with",
            ),
        ),
    ]
