"""Reading responses as a person would."""

import html
import re


def text(response) -> str:
    """The visible text of a response, tags stripped and white space folded."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()))


def hrefs(response) -> list[str]:
    return re.findall(r'href="([^"]*)"', response.content.decode())
