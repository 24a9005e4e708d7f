"""5. Page weight: the result page and its static files as whitenoise serves them, and
the htmx partial of the next lookup."""

from __future__ import annotations

import re

import requests

from bench.common import PROJECT, Bench, Plan, Row, portal, sandbox

NAME = "page_weight"
KB = 1024


def run(bench: Bench) -> dict:
    headers = {**bench.headers, "Accept-Encoding": "br, gzip"}
    with sandbox(0) as upstream, portal(upstream, bench.static_root, LOOKUP_CACHE_SECONDS="600") as base:
        page = requests.get(f"{base}/projects/{PROJECT}/", headers=headers, stream=True, timeout=10)
        html_raw = page.raw.read(decode_content=False)
        text = requests.get(f"{base}/projects/{PROJECT}/", headers=headers, timeout=10).text
        # Staff mostly look up the next customer from the result page: htmx fetches the partial.
        partial = requests.get(
            f"{base}/?project={PROJECT}", headers={**headers, "HX-Request": "true"}, stream=True, timeout=10
        )
        partial_raw = partial.raw.read(decode_content=False)
        sizes, cache_control = {}, {}
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', text):
            answer = requests.get(base + asset, headers=headers, stream=True, timeout=10)
            sizes[asset] = len(answer.raw.read(decode_content=False))
            cache_control[asset] = answer.headers.get("Cache-Control", "")
    return {
        "html_bytes": len(html_raw),
        "html_uncompressed_bytes": len(text.encode()),
        "assets": sizes,
        "asset_cache_control": cache_control,
        "first_visit_bytes": len(html_raw) + sum(sizes.values()),
        "repeat_visit_bytes": len(html_raw),  # hashed static files are cached for a year
        "next_lookup_bytes": len(partial_raw),  # the next search from the same page (htmx partial)
    }


def summary(results: dict) -> list[Row]:
    w = results[NAME]
    rows = (
        ("first visit (HTML + CSS + JS, compressed)", "first_visit_bytes", 40),
        ("repeat visit (whole page; static files cached)", "repeat_visit_bytes", 8),
        ("next lookup from the result page (htmx partial)", "next_lookup_bytes", 8),
    )
    return [
        Row(5, f"page weight, {what}", f"{w[key] / KB:.1f} KB", f"< {limit} KB", w[key] < limit * KB)
        for what, key, limit in rows
    ]


def details(results: dict, plan: Plan) -> list[str]:
    w = results[NAME]
    lines = [
        "### 5. Page weight",
        "",
        f"Result page HTML {w['html_bytes']:,} bytes over the wire ({w['html_uncompressed_bytes']:,} "
        "uncompressed); static files (compressed, as whitenoise serves them):",
        "",
    ]
    for asset, size in w["assets"].items():
        lines.append(f"- `{asset}`: {size:,} bytes, `Cache-Control: {w['asset_cache_control'][asset]}`")
    return [*lines, ""]
