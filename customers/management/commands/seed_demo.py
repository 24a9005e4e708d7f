from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

# Known passwords are acceptable only because this refuses to run outside a developer's
# demo: demo mode and DJANGO_DEBUG both on. A production machine with the demo switched on
# (to show made-up customers) must still not get a superuser whose password is published.
DEMO_USERS = [
    ("sales", "sales-demo-2143", "Sales", False),
    ("installer", "installer-demo-2143", "Installers", False),
    ("admin", "admin-demo-2143", "Admins", True),
    ("visitor", "visitor-demo-2143", None, False),
]


class Command(BaseCommand):
    help = "Create the demo users (demo mode only) and print how to sign in."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo only runs with DJANGO_DEBUG on: it creates users with published passwords, "
                "an administrator among them."
            )
        if not settings.SOLARPROOF_DEMO:
            raise CommandError("seed_demo only runs in demo mode: it creates users with published passwords.")
        users = get_user_model().objects
        for username, password, role, is_admin in DEMO_USERS:
            user, _ = users.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = user.is_superuser = is_admin
            user.save()
            user.groups.set([Group.objects.get(name=role)] if role else [])
        self.stdout.write("Demo users (demo mode only):")
        for username, password, role, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} password {password:<22} {role or 'no role: sees no customer data'}")
