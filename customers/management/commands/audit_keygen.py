from typing import Any

from django.core.management.base import BaseCommand

from customers.audit import signing


class Command(BaseCommand):
    help = "Print a new Ed25519 key pair for the audit log, each as standard base64 of its 32 raw bytes."

    def handle(self, *args: Any, **options: Any) -> None:
        private, public = signing.new_key_pair()
        self.stdout.write(f"AUDIT_SIGNING_KEY={private}")
        self.stdout.write(f"AUDIT_VERIFY_KEYS={public}")
        self.stderr.write(
            "Keep AUDIT_SIGNING_KEY secret (a secret store, never the database); give AUDIT_VERIFY_KEYS to "
            "auditors. When rotating, list the old public key too: AUDIT_VERIFY_KEYS=new,old."
        )
