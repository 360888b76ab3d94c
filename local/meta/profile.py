"""Meta's messenger_profile for Instagram, for the Graph API sandbox: each account's ice breakers and persistent
menu (Instagram API with Instagram Login, "Ice Breakers", "The Persistent Menu").

  POST   /<v>/<IG_ID|me>/messenger_profile?platform=instagram   {"platform", "ice_breakers", "persistent_menu"}
  GET    /<v>/<IG_ID|me>/messenger_profile?fields=ice_breakers[,persistent_menu]&platform=instagram
  DELETE /<v>/<IG_ID|me>/messenger_profile   {"fields": [...]}

Meta's rules hold: at most 4 questions per locale, a default locale, postback and web_url buttons. A GET for
ice_breakers alone answers Meta's documented form, `{"data": [<locale's ice breakers>, ...]}`; for several
fields, Messenger's, `{"data": [{"ice_breakers": [...], "persistent_menu": [...]}]}` (both exist in the wild).
POST answers `{"result": "success"}`. This module holds the state under the lock it is given and never touches
the network; `drift()` plays someone changing the profile in another tool.
"""

import re
import threading
from typing import Any

from local.meta.answers import GraphError, Reply
from local.meta.send_validation import invalid

_PATH = re.compile(r"/(v\d+\.\d+)/([^/]+)/messenger_profile")
FIELDS = ("ice_breakers", "persistent_menu")
MAX_QUESTIONS = 4


def route(path: str) -> str | None:
    """The node (an account id or `me`) of a messenger_profile path."""
    match = _PATH.fullmatch(path)
    return match.group(2) if match else None


class Profiles:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._profiles: dict[str, dict[str, list[Any]]] = {}

    def answer(self, method: str, account_id: str, query: dict[str, list[str]], body: Any) -> Reply:
        if method == "POST":
            return self._set(account_id, query, body)
        if method == "GET":
            return self._get(account_id, query)
        if method == "DELETE":
            return self._delete(account_id, body)
        raise GraphError(400, 100, f"(#100) Unsupported method {method} on messenger_profile")

    def of(self, account_id: str) -> dict[str, list[Any]]:
        with self._lock:
            return {k: list(v) for k, v in self._profiles.get(account_id, {}).items()}

    def drift(self, account_id: str) -> None:
        """Someone clears the account's ice breakers in another tool."""
        with self._lock:
            self._profiles.get(account_id, {}).pop("ice_breakers", None)

    def clear(self) -> None:
        with self._lock:
            self._profiles.clear()

    def _set(self, account_id: str, query: dict[str, list[str]], body: Any) -> Reply:
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object")
        platform = body.get("platform") or next(iter(query.get("platform", [])), None)
        if platform != "instagram":
            raise invalid("Param platform must be instagram")
        unknown = set(body) - {"platform", *FIELDS}
        if unknown:
            raise invalid(f"Unknown parameter(s): {', '.join(sorted(unknown))}")
        given = {name: body[name] for name in FIELDS if name in body}
        if not given:
            raise invalid("Give ice_breakers or persistent_menu")
        for name, entries in given.items():
            _check(name, entries)
        with self._lock:
            self._profiles.setdefault(account_id, {}).update(given)
        return Reply(200, {"result": "success"}, {})

    def _get(self, account_id: str, query: dict[str, list[str]]) -> Reply:
        fields = [f for f in ",".join(query.get("fields", [])).split(",") if f]
        if not fields or set(fields) - set(FIELDS):
            raise invalid("Param fields must name ice_breakers and/or persistent_menu")
        profile = self.of(account_id)
        if fields == ["ice_breakers"]:
            return Reply(200, {"data": profile.get("ice_breakers", [])}, {})
        shown = {name: profile[name] for name in fields if name in profile}
        return Reply(200, {"data": [shown] if shown else []}, {})

    def _delete(self, account_id: str, body: Any) -> Reply:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, list) or not fields or set(fields) - set(FIELDS):
            raise invalid("Param fields must list ice_breakers and/or persistent_menu")
        with self._lock:
            for name in fields:
                self._profiles.get(account_id, {}).pop(name, None)
        return Reply(200, {"result": "success"}, {})


def _check(name: str, entries: Any) -> None:
    if not isinstance(entries, list) or not entries:
        raise invalid(f"Param {name} must be a non-empty array")
    locales = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("call_to_actions"), list):
            raise invalid(f"Param {name}[] must have call_to_actions")
        locales.append(entry.get("locale"))
        actions = entry["call_to_actions"]
        if name == "ice_breakers" and not 1 <= len(actions) <= MAX_QUESTIONS:
            raise invalid(f"Param {name}[].call_to_actions can have 1 to {MAX_QUESTIONS} questions")
        for action in actions:
            keys = ("question", "payload") if name == "ice_breakers" else ("type", "title")
            if not isinstance(action, dict) or any(not isinstance(action.get(k), str) for k in keys):
                raise invalid(f"Param {name}[].call_to_actions[] needs {' and '.join(keys)}")
    if "default" not in locales:
        raise invalid(f"Param {name} requires the default locale")
