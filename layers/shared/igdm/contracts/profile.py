"""An account's ice breakers and persistent menu: Meta's messenger_profile for Instagram (Instagram API with
Instagram Login, "Ice Breakers" and "The Persistent Menu"). Declared per account (tools.accounts profile),
applied with `POST /me/messenger_profile?platform=instagram`, and checked by the refresher, which applies it
again when what Meta shows has drifted from it.

Meta's limits: at most 4 ice breaker questions per locale, a `default` locale required; menu buttons are
`postback` or `web_url`. The lengths below are Messenger's (Meta documents none for Instagram): a question of
at most 80 characters, a menu title of at most 30, a payload of at most 1000, at most 20 menu buttons.
"""

import json
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_LOCALE = "default"
FIELDS = ("ice_breakers", "persistent_menu")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IceBreaker(_Strict):
    question: str = Field(min_length=1, max_length=80)
    payload: str = Field(min_length=1, max_length=1000, description="The postback payload a tap sends.")


class IceBreakers(_Strict):
    locale: str = Field(DEFAULT_LOCALE, min_length=1, max_length=20)
    call_to_actions: list[IceBreaker] = Field(min_length=1, max_length=4)


class MenuButton(_Strict):
    type: Literal["postback", "web_url"]
    title: str = Field(min_length=1, max_length=30)
    payload: str | None = Field(None, min_length=1, max_length=1000)
    url: str | None = Field(None, max_length=2000)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith("https://"):
            raise ValueError("url must be an https URL")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.type == "postback" and (self.payload is None or self.url is not None):
            raise ValueError("a postback button has a payload and no url")
        if self.type == "web_url" and (self.url is None or self.payload is not None):
            raise ValueError("a web_url button has a url and no payload")
        return self


class Menu(_Strict):
    locale: str = Field(DEFAULT_LOCALE, min_length=1, max_length=20)
    call_to_actions: list[MenuButton] = Field(min_length=1, max_length=20)


class MessengerProfile(_Strict):
    """What a business wants customers to see before and while they write: its ice breakers, its menu."""

    ice_breakers: list[IceBreakers] = Field(default_factory=list)
    persistent_menu: list[Menu] = Field(default_factory=list)

    @model_validator(mode="after")
    def _locales(self) -> Self:
        if not self.ice_breakers and not self.persistent_menu:
            raise ValueError("give ice_breakers, persistent_menu, or both")
        for name, entries in (("ice_breakers", self.ice_breakers), ("persistent_menu", self.persistent_menu)):
            locales = [e.locale for e in entries]
            if entries and DEFAULT_LOCALE not in locales:
                raise ValueError(f"{name}: Meta requires a {DEFAULT_LOCALE!r} locale")
            if len(set(locales)) < len(locales):
                raise ValueError(f"{name}: each locale once")
        return self

    @property
    def fields(self) -> list[str]:
        return [name for name in FIELDS if getattr(self, name)]

    def graph_body(self) -> dict[str, Any]:
        """The body of `POST /me/messenger_profile?platform=instagram`."""
        return {"platform": "instagram", **self.model_dump(include=set(self.fields), exclude_none=True)}

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True, exclude_defaults=False)

    def summary(self) -> str:
        questions = sum(len(e.call_to_actions) for e in self.ice_breakers if e.locale == DEFAULT_LOCALE)
        buttons = sum(len(m.call_to_actions) for m in self.persistent_menu if m.locale == DEFAULT_LOCALE)
        return f"{questions} ice breakers, {buttons} menu buttons"

    def shown_by(self, answer: dict[str, Any]) -> bool:
        """Whether Meta's answer to `GET /me/messenger_profile?fields=...` shows exactly this profile."""
        shown = as_shown(answer)
        return all(_normal(getattr(self, name)) == _normal_raw(shown.get(name, [])) for name in self.fields)


def as_shown(answer: dict[str, Any]) -> dict[str, list[Any]]:
    """Meta's answer, by field. Meta documents `{"data": [<ice breakers of a locale>, ...]}` for
    `fields=ice_breakers`; Messenger answers `{"data": [{"ice_breakers": [...], "persistent_menu": [...]}]}`.
    Both are read (UNCONFIRMED which Instagram gives for two fields)."""
    data = answer.get("data")
    if not isinstance(data, list):
        return {}
    items = [d for d in data if isinstance(d, dict)]
    if any(name in d for d in items for name in FIELDS):
        shown: dict[str, list[Any]] = {}
        for item in items:
            for name in FIELDS:
                if isinstance(item.get(name), list):
                    shown.setdefault(name, []).extend(item[name])
        return shown
    return {"ice_breakers": items}  # the documented form of fields=ice_breakers


def _normal(entries: list[IceBreakers] | list[Menu]) -> list[Any]:
    return _normal_raw([json.loads(e.model_dump_json(exclude_none=True)) for e in entries])


def _normal_raw(entries: list[Any]) -> list[Any]:
    """Order-independent by locale; unknown keys Meta adds are ignored, buttons compared in their order."""
    normal = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        actions = [
            {k: v for k, v in a.items() if k in ("question", "payload", "type", "title", "url")}
            for a in entry.get("call_to_actions", [])
            if isinstance(a, dict)
        ]
        normal.append((str(entry.get("locale", DEFAULT_LOCALE)), json.dumps(actions, sort_keys=True)))
    return sorted(normal)
