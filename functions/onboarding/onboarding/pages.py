"""The few HTML pages a person onboarding an account sees: short, escaped, and never cached or framed.

No page carries a token. Referrer-Policy keeps the callback URL (which holds the one-time code) from
leaking to any link on the page; the Content-Security-Policy allows no script at all.
"""

from html import escape

from igdm.runtime.http_api import Reply

HEADERS = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
    ),
)
TEXT_HTML = "text/html; charset=utf-8"


def page(status: int, title: str, paragraphs: list[str], *, outcome: str, cookie: str | None = None) -> Reply:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
        "line-height:1.5}h1{font-size:1.4rem}</style></head>"
        f'<body><main data-outcome="{escape(outcome)}"><h1 id="title">{escape(title)}</h1>'
        f'<div id="details">{body}</div></main></body></html>'
    )
    return Reply(status, html, TEXT_HTML, HEADERS + ((("Set-Cookie", cookie),) if cookie else ()))


def redirect(location: str, *, cookie: str | None = None) -> Reply:
    headers = [*HEADERS, ("Location", location)]
    if cookie:
        headers.append(("Set-Cookie", cookie))
    return Reply(302, "", TEXT_HTML, tuple(headers))
