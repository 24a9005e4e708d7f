#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["verify_access_report"]:
        # An auditor's machine: the public keys alone, none of the portal's configuration.
        os.environ["DJANGO_SETTINGS_MODULE"] = "solarproof_portal.auditor_settings"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")
    if sys.argv[1:] == ["audit_keygen"]:
        # A key generator needs no configuration: a new deployment makes its key before it
        # has one, so the settings (which would ask for that key) are not loaded.
        from customers.management.commands.audit_keygen import ADVICE, key_pair_lines

        print("\n".join(key_pair_lines()))
        print(ADVICE, file=sys.stderr)
        return
    from solarproof_portal.startup import load_settings_or_exit

    load_settings_or_exit()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
