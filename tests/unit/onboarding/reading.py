"""A page as the person reads it: its visible words (no markup, no style, no link targets), and the words that
would mean nothing to them."""

import re
from html.parser import HTMLParser

from igdm.runtime.http_api import Reply

# Words of the gateway's own trade, as patterns over the lower-cased text: a page in front of a business owner
# uses none of them.
JARGON = (
    r"\bgateway",
    r"\bwebhook",
    r"\bigsid\b",
    r"\btokens?\b",
    r"\boauth\b",
    r"\bscopes?\b",
    r"\bsubscri",
    r"\bstates?\b",
    r"\bapi\b",
    r"instagram_business",
    r"\bcallback",
    r"\bnonce\b",
    r"\boperator",
)


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._hidden = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden = tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._hidden = False

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.words.append(data)


def visible_text(reply: Reply) -> str:
    reader = _Visible()
    reader.feed(reply.body)
    return " ".join(" ".join(reader.words).split())


def jargon(reply: Reply) -> list[str]:
    text = visible_text(reply).lower()
    return [word for word in JARGON if re.search(word, text)]
