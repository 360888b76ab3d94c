"""Settings read from the environment without pydantic, for the functions whose settings are plain strings,
numbers and flags (the webhook, the authorizer, the fan-out, the eraser, the HTTP API, the callback function).

pydantic is about 70 ms of a cold start, most of what those functions import beyond boto3; the settings were
all they used it for at import. The values and refusals are pydantic's, word for word: a ConfigurationError
names every variable that is missing or invalid, and why, as igdm.runtime.config.load_settings words it.
tests/unit/layer/test_plain_settings.py holds each kind of Setting to pydantic's reading of the same text, and
each function's tests hold its settings class to the pydantic model it had. The functions whose settings need
pydantic's validators (TokenUrl, CommaList: the sender, onboarding, the refresher, the reconciler) keep their
models in igdm.runtime.config.
"""

import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar, NamedTuple, Self

from igdm.runtime.configuration_error import ConfigurationError

# What pydantic-core (Rust's str::trim) takes for whitespace around a number: Unicode's White_Space, which is
# not Python's str.isspace() (that also strips the separators \x1c-\x1f).
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
# Rust's f64 syntax (str::parse), which pydantic-core reads floats with; compiled at first use (re caches it).
_FLOAT = r"[+-]?(?:inf|infinity|nan|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)"
_JSON_INTEGER = r"-?(?:0|[1-9][0-9]*)"  # jiter's, which pydantic-core reads integers with
_LONG_INTEGER = r"-?([1-9][0-9]*)"
_MAX_DIGITS = 4300  # Python's limit on an integer's digits, which pydantic-core applies to a string's
_FALSE = frozenset({"f", "n", "no", "off", "false"})  # and "0"; in any case (ASCII)
_TRUE = frozenset({"t", "y", "on", "yes", "true"})  # and "1"

_NOT_UNICODE = "Input should be a valid string, unable to parse raw data as a unicode string"
_NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
_TOO_LONG = "Unable to parse input string as an integer, exceeded maximum size"
_NOT_A_NUMBER = "Input should be a valid number, unable to parse string as a number"
_NOT_A_BOOLEAN = "Input should be a valid boolean, unable to interpret input"


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class Setting(NamedTuple):
    """One variable: a str, int, float or bool, whether it is required, and its bounds, as the pydantic Field
    declared them (its default is the settings class's). A field typed ``X | None`` reads a text as X does.
    Bounds are whole numbers, written as pydantic writes them in its messages."""

    kind: type[str] | type[int] | type[float] | type[bool]
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    gt: int | None = None
    ge: int | None = None
    lt: int | None = None
    le: int | None = None
    description: str = ""

    def is_required(self) -> bool:
        return self.required

    def read(self, text: str) -> str | int | float | bool:
        """The value of ``text``; ValueError with pydantic's message when it is not one."""
        if self.kind is str:
            if self.min_length is None and self.max_length is None:
                return text  # pydantic takes any str as it is, even one that is not valid Unicode
            _unicode(text)
            if self.min_length is not None and len(text) < self.min_length:
                raise ValueError(f"String should have at least {self.min_length} character{_s(self.min_length)}")
            if self.max_length is not None and len(text) > self.max_length:
                raise ValueError(f"String should have at most {self.max_length} character{_s(self.max_length)}")
            return text
        _unicode(text)
        if self.kind is bool:
            return _boolean(text)
        value = _integer(text) if self.kind is int else _float(text)
        # pydantic's order, and its comparisons: NaN fails every bound
        if self.le is not None and not value <= self.le:
            raise ValueError(f"Input should be less than or equal to {self.le}")
        if self.lt is not None and not value < self.lt:
            raise ValueError(f"Input should be less than {self.lt}")
        if self.ge is not None and not value >= self.ge:
            raise ValueError(f"Input should be greater than or equal to {self.ge}")
        if self.gt is not None and not value > self.gt:
            raise ValueError(f"Input should be greater than {self.gt}")
        return value


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _unicode(text: str) -> None:
    """pydantic reads a str as UTF-8: a lone surrogate (an undecodable byte of the environment) fails."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ValueError(_NOT_UNICODE) from None


def _boolean(text: str) -> bool:
    if text == "0" or (text.isascii() and text.lower() in _FALSE):
        return False
    if text == "1" or (text.isascii() and text.lower() in _TRUE):
        return True
    raise ValueError(_NOT_A_BOOLEAN)


def _float(text: str) -> float:
    """pydantic-core's str_as_float: Rust's float syntax on the trimmed text, else on the text as given with
    its underscores removed (none at either end, none doubled)."""
    trimmed = text.strip(_WHITESPACE)
    if re.fullmatch(_FLOAT, trimmed, re.IGNORECASE | re.ASCII):
        return float(trimmed)
    if "_" in text and not text.startswith("_") and not text.endswith("_") and "__" not in text:
        bare = text.replace("_", "")
        if re.fullmatch(_FLOAT, bare, re.IGNORECASE | re.ASCII):
            return float(bare)
    raise ValueError(_NOT_A_NUMBER)


def _integer(text: str) -> int:
    """pydantic-core's str_as_int: the text as a JSON integer, else as clean_int_str leaves it."""
    long = re.match(_LONG_INTEGER, text, re.ASCII)
    if long and len(long.group(1)) > _MAX_DIGITS:
        raise ValueError(_TOO_LONG)
    if re.fullmatch(_JSON_INTEGER, text, re.ASCII):
        return int(text)
    cleaned = _clean_integer(text)
    if cleaned is None or not re.fullmatch(_JSON_INTEGER, cleaned, re.ASCII) or len(cleaned.lstrip("-")) > _MAX_DIGITS:
        raise ValueError(_NOT_AN_INTEGER)
    return int(cleaned)


def _clean_integer(text: str) -> str | None:
    """pydantic-core's clean_int_str: trimmed, a leading + dropped, leading zeros, a zero fraction and
    underscores between digits stripped; None when it cannot be an integer."""
    s = text.strip(_WHITESPACE)
    if s.startswith("+"):
        if s[1:].startswith("-"):
            return None
        s = s[1:]
    sign = ""
    if s.startswith("-"):
        if s[1:].startswith(("-", "+")):
            return None
        sign, s = "-", s[1:]
    stripped = _strip_leading_zeros(s)
    if stripped is None:
        return None
    s = stripped
    point = s.find(".")
    if point >= 0 and s[point + 1 :] and s[point + 1 :].strip("0") == "":
        s = s[:point]
    if "_" in s and not s.startswith("_") and not s.endswith("_") and "__" not in s:
        return sign + s.replace("_", "")
    return sign + s


def _strip_leading_zeros(s: str) -> str | None:
    """pydantic-core's strip_leading_zeros: one zero kept before a point or of all zeros; None for text that
    does not start with a digit or -."""
    if not s or not ("0" <= s[0] <= "9" or s[0] == "-"):
        return None
    if s[0] != "0":
        return s
    for i, c in enumerate(s[1:], 1):
        if c in "0_":
            continue
        if "1" <= c <= "9" or c == "-":
            return s[i:]
        if c == ".":
            return s[i - 1 :]
        return None
    return s[-1:]


class PlainSettings:
    """A settings class read by hand: a frozen dataclass whose ``model_fields`` gives each field's Setting
    under the field's name (as a pydantic model's model_fields: a test holds the template to them)."""

    model_fields: ClassVar[dict[str, Setting]]

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] = os.environ) -> Self:
        """Each field from the variable of its name in upper case; ConfigurationError naming every problem."""
        values: dict[str, Any] = {}
        problems = []
        for name, setting in cls.model_fields.items():
            variable = name.upper()
            if variable not in environment:
                if setting.required:
                    problems.append(f"{variable}: Field required")
                continue
            try:
                values[name] = setting.read(environment[variable])
            except ValueError as exc:
                problems.append(f"{variable}: {exc}")
        if problems:
            raise ConfigurationError(f"invalid configuration: {'; '.join(problems)}")
        return cls(**values)


def cached_settings[PlainSettingsT: PlainSettings](settings: type[PlainSettingsT]) -> PlainSettingsT:
    """The settings read once per execution environment (igdm.runtime.config.clear_settings_cache forgets them)."""
    return _cached(settings)  # type: ignore[arg-type, return-value]  # a class is hashable; _cached built it


@cache
def _cached(settings: type[PlainSettings]) -> PlainSettings:
    return settings.from_environment()


def clear_cache() -> None:
    _cached.cache_clear()
