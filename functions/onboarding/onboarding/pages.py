"""The few HTML pages a person sees: short, escaped, readable on a phone, and never cached or framed.

No page carries a token. Referrer-Policy keeps the page's address (an invite, or the callback's one-time code)
from leaking to any link or image on it; the Content-Security-Policy allows no script at all, and images only
from the business's logo host when it has one. Everything a page shows is escaped here, whoever wrote it: the
template's parameters, Instagram's answers, the account's username.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from igdm.runtime.http_api import Reply

TEXT_HTML = "text/html; charset=utf-8"
_POLICY = ("default-src 'none'", "style-src 'unsafe-inline'", "form-action 'none'", "frame-ancestors 'none'")
_STYLE = (
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f2f3f5;color:#1c1e21;"
    "font:1.0625rem/1.55 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    "main{max-width:34rem;min-height:100vh;margin:0 auto;padding:1.5rem 1.25rem 2.5rem;background:#fff}"
    "@media (min-width:40rem){main{min-height:0;margin:2.5rem auto;padding:2rem 2.25rem;border-radius:14px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.12)}}"
    "header{display:flex;align-items:center;gap:.75rem;margin:0 0 1.25rem;padding:0 0 .9rem;"
    "border-bottom:1px solid #e4e6eb}"
    "header img{width:3rem;height:3rem;object-fit:contain;border-radius:10px}"
    "#business{font-weight:600;font-size:1.1rem}"
    "h1{font-size:1.45rem;line-height:1.25;margin:0 0 1rem}"
    "h2{font-size:1.05rem;margin:1.5rem 0 .4rem}"
    "ul{margin:.4rem 0;padding-left:1.3rem}li{margin:.35rem 0}"
    "a{color:#0b57d0;overflow-wrap:anywhere}"
    ".next{font-weight:600}"
    ".note{color:#5f6368;font-size:.92rem}"
    ".button{display:block;margin:1.75rem 0 .75rem;padding:.9rem 1rem;border-radius:10px;background:#0b57d0;"
    "color:#fff;font-weight:600;text-align:center;text-decoration:none}"
)


@dataclass(frozen=True)
class Business:
    """Who asks for the account (the template's BusinessName, BusinessLogoUrl and BusinessPrivacyPolicyUrl):
    the pages name it, show its logo and link its privacy policy. Each may be empty."""

    name: str = ""
    logo_url: str = ""
    privacy_policy_url: str = ""

    def called(self, *, starting_a_sentence: bool = False) -> str:
        """Its name, or words that point at it without one."""
        if self.name:
            return self.name
        return "The business that invited you" if starting_a_sentence else "the business that invited you"


@dataclass(frozen=True)
class Line:
    text: str


class Next(Line):
    """What to do now: the line a reader looks for."""


class Note(Line):
    """Small print: what to quote to someone helping, Instagram's own words."""


class Heading(Line):
    pass


@dataclass(frozen=True)
class Section:
    """A heading and its list."""

    heading: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """A link to another site, opened in a new tab so that this page (and what it holds) stays where it is."""

    label: str
    href: str
    id: str


class Button(Link):
    """The page's one big button, a link followed in this tab."""


Block = str | Line | Section | Link


def headers(business: Business | None = None) -> tuple[tuple[str, str], ...]:
    policy = list(_POLICY)
    if business and business.logo_url:
        parts = urlsplit(business.logo_url)
        # The logo's origin only: the settings took https and a plain host, so it cannot widen the policy.
        policy.insert(1, f"img-src {parts.scheme}://{parts.netloc}".lower())
    return (
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "; ".join([*policy, "base-uri 'none'"])),
    )


def page(
    status: int,
    title: str,
    blocks: Sequence[Block],
    *,
    outcome: str,
    business: Business | None = None,
    cookie: str | None = None,
) -> Reply:
    body = "".join(_block(b) for b in blocks)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main data-outcome="{escape(outcome)}">{_header(business)}<h1 id="title">{escape(title)}</h1>'
        f'<div id="details">{body}</div></main></body></html>'
    )
    return Reply(status, html, TEXT_HTML, headers(business) + ((("Set-Cookie", cookie),) if cookie else ()))


def _header(business: Business | None) -> str:
    if business is None or not (business.name or business.logo_url):
        return ""
    # The name, when there is one, says what the logo shows. no-referrer: its host learns nothing of this page.
    alt = "" if business.name else "Logo"
    logo = (
        f'<img id="logo" src="{escape(business.logo_url)}" alt="{alt}" referrerpolicy="no-referrer">'
        if business.logo_url
        else ""
    )
    name = f'<span id="business">{escape(business.name)}</span>' if business.name else ""
    return f"<header>{logo}{name}</header>"


_LINES = {Next: ('<p class="next">', "</p>"), Note: ('<p class="note">', "</p>"), Heading: ("<h2>", "</h2>")}


def _block(block: Block) -> str:
    match block:
        case str():
            return f"<p>{escape(block)}</p>"
        case Line():
            opening, closing = _LINES[type(block)]
            return f"{opening}{escape(block.text)}{closing}"
        case Section():
            listed = "".join(f"<li>{escape(item)}</li>" for item in block.items)
            return f"<h2>{escape(block.heading)}</h2><ul>{listed}</ul>"
        case Button():
            return f'<a class="button" id="{escape(block.id)}" href="{escape(block.href)}">{escape(block.label)}</a>'
        case Link():
            return (
                f'<p><a id="{escape(block.id)}" href="{escape(block.href)}" target="_blank" '
                f'rel="noopener noreferrer">{escape(block.label)}</a></p>'
            )
