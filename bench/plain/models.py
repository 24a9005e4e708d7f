from django.conf import settings
from django.db import models


class PlainLookup(models.Model):
    """The afternoon version's audit row: who looked up which project, when, and what
    happened. The bench creates the table (bench/database.py); no migrations, since
    this app is never installed in the portal."""

    created_at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    project_id = models.PositiveBigIntegerField()
    outcome = models.CharField(max_length=32)
    customer_id = models.PositiveBigIntegerField(null=True)
    ip = models.GenericIPAddressField(null=True)

    class Meta:
        app_label = "bench_plain"

    def __str__(self) -> str:
        return f"{self.user_id} looked up {self.project_id}"
