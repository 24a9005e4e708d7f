#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["verify_access_report"]:
        # An auditor's machine: the public keys alone, none of the portal's configuration.
        os.environ["DJANGO_SETTINGS_MODULE"] = "solarproof_portal.auditor_settings"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")
    from solarproof_portal.startup import load_settings_or_exit

    load_settings_or_exit()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
