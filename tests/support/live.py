"""A production instance's pages from outside, as a browser or a probe reaches them:
plain HTTP to gunicorn, HTTPS as the TLS proxy says it."""

import re

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

HTTPS = {"X-Forwarded-Proto": "https"}


def production_user(make_user, username: str = "sam.sales"):
    """A user whose password the production instances can check (the tests' own fast
    hasher is not in their settings)."""
    user = make_user(username, "Sales")
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode("correct-horse-battery", hasher.salt())
    user.save()
    return user


def shared_services() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL: the second make test run in .ci/run")


def sign_in(base: str, username: str, password: str) -> str:
    """Sign in through the real form; returns the session cookie's value."""
    login = f"{base}/accounts/login/"
    page = requests.get(login, headers=HTTPS, timeout=5)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, (page.status_code, page.text[:300])
    token = match[1]
    answer = requests.post(
        login,
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers={
            **HTTPS,
            "Referer": login.replace("http://", "https://"),
            "Cookie": f"csrftoken={page.cookies['csrftoken']}",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text[:500]
    return answer.cookies[settings.SESSION_COOKIE_NAME]
