"""Holds a settings class read by hand (igdm.runtime.plain_settings) to the pydantic model it replaced: the
same environment gives the same values, or the same ConfigurationError in the same words."""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from igdm.runtime.config import load_settings
from igdm.runtime.configuration_error import ConfigurationError
from igdm.runtime.plain_settings import PlainSettings

# Texts pydantic reads, or refuses, in its own ways: whitespace (Unicode's, not Python's), signs, underscores,
# fractions, exponents, infinities, lone surrogates (an undecodable byte of the environment).
INTEGERS = ["5", " 5 ", "\t7\n", "+5", "-0", "007", "1_000", "5.0", "5.00", "0", "-1", "", " ", "5.", ".0", "5.5"]
INTEGERS += ["1e3", "0x10", "1__0", "_1", "1_", "\u0663", "\u22125", "abc", "99999999999999999999", "\xa05", "\x1c5"]
INTEGERS += ["\u30005", "0_0", "00.0", "+-1", "-+1", "--1", "0_.0", "-0_1", "1" * 4301, "-" + "1" * 4300, "5\udcff"]
FLOATS = ["5", "5.5", " 5.5 ", "1e1", "1E-1", "+5", "-5", "0", "-0", "inf", "-Infinity", "nan", "NaN", "1_0", "1__0"]
FLOATS += ["_1", "1_", "1.5_5", ".5", "5.", ".", "", " ", "1e", "e1", "0x10", "1,5", "\xa05", "\x1c5", "\u0663"]
FLOATS += [" 1_0", "1_e1", "in_f", "1e400", "1e-400", "3.05", "10", "10.000001", "30", "30.5", "900", "5\udcff"]
BOOLEANS = ["0", "1", "true", "True", "FALSE", "f", "t", "y", "n", "yes", "NO", "on", "Off", " true", "", "2", "1.0"]
BOOLEANS += ["tru\u0435", "\u212a", "yes\n", "x\udcff"]
STRINGS = ["", "x", " ", "q" * 1001, "\udcff", "a\udcff", "\u00e9"]
SAMPLES: dict[type, list[str]] = {int: INTEGERS, float: FLOATS, bool: BOOLEANS, str: STRINGS}


def answers(plain: type[PlainSettings], model: type[BaseModel], environment: dict[str, str]) -> tuple[str, str]:
    """Each reader's settings, or its refusal, as text."""
    results = []
    for read in (
        lambda: plain.from_environment(environment),
        lambda: _with_environment(environment, lambda: load_settings(model)),
    ):
        try:
            settings = read()
            results.append(repr({name: getattr(settings, name) for name in model.model_fields}))
        except ConfigurationError as exc:
            results.append(str(exc))
    return results[0], results[1]


def environments(plain: type[PlainSettings], required: dict[str, str]) -> Iterator[dict[str, str]]:
    """Nothing; the required variables alone and each without one; then each variable with each text of its kind."""
    yield {}
    yield required
    for variable in required:
        yield {name: value for name, value in required.items() if name != variable}
    for name, setting in plain.model_fields.items():
        for text in SAMPLES[setting.kind]:
            yield {**required, name.upper(): text}


def _with_environment(environment: dict[str, str], read: Callable[[], Any]) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, value)
        return read()
