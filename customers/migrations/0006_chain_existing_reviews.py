"""Chain the review records written before reviews were chained, in the order they
were written. What happened to them before this migration cannot be proven; from here
on, deleting or editing one breaks the chain."""

from django.db import migrations

from customers.audit.chain import GENESIS, review_hash


def chain_reviews(apps, schema_editor):
    HistoryReview = apps.get_model("customers", "HistoryReview")
    prev = GENESIS
    for sequence, review in enumerate(HistoryReview.objects.order_by("id").iterator(chunk_size=2000), start=1):
        review.sequence = sequence
        review.prev_hash = prev
        # Read back as stored (JSON, microseconds) so the hash matches what verification reads.
        values = {
            name: getattr(review, name)
            for name in ("created_at", "user_id", "username", "kind", "detail", "rows", "ip", "request_id")
        }
        review.hash = prev = review_hash({**values, "sequence": sequence, "prev_hash": review.prev_hash})
        review.save(update_fields=["sequence", "prev_hash", "hash"])


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_audit_holds_up")]

    operations = [migrations.RunPython(chain_reviews, migrations.RunPython.noop)]
