from typing import Any

from django.core.management.base import BaseCommand

from customers.audit import signing

ADVICE = (
    "Keep AUDIT_SIGNING_KEY secret (a secret store, never the database); give AUDIT_VERIFY_KEYS to "
    "auditors. When rotating, list the old public key too: AUDIT_VERIFY_KEYS=new,old."
)


def key_pair_lines() -> list[str]:
    """A new pair as the two variables to set. Needs no settings: manage.py runs it before
    loading them, so a new deployment can make its key before it has a configuration."""
    private, public = signing.new_key_pair()
    return [f"AUDIT_SIGNING_KEY={private}", f"AUDIT_VERIFY_KEYS={public}"]


class Command(BaseCommand):
    help = "Print a new Ed25519 key pair for the audit log, each as standard base64 of its 32 raw bytes."

    def handle(self, *args: Any, **options: Any) -> None:
        for line in key_pair_lines():
            self.stdout.write(line)
        self.stderr.write(ADVICE)
