"""The sandbox's catalogue and the README's table of demo projects stay in step: a newcomer
reads the table to know what to type, so a case missing from it is a case nobody tries."""

import re
from pathlib import Path

from django.conf import settings

from customers.upstream.sandbox_data import CUSTOMERS, ERRORS


def _readme_demo_projects() -> set[int]:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    table = readme.split("### Demo projects", 1)[1].split("\n\n| project |", 1)[1].split("\n\n", 1)[0]
    projects: set[int] = set()
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1]
        for first, last in re.findall(r"(\d+)(?:–(\d+))?", cell):
            projects.update(range(int(first), int(last or first) + 1))
    return projects


def test_it_lists_every_sandbox_case_in_the_readme() -> None:
    assert _readme_demo_projects() == set(CUSTOMERS) | set(ERRORS)


def test_it_lists_the_cases_a_newcomer_was_missing() -> None:
    assert {2149, 9599, 9515} <= _readme_demo_projects()
