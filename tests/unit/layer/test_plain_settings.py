"""The settings read without pydantic (igdm.runtime.plain_settings) against pydantic's reading of the same text:
each kind of Setting, with and without bounds, gives the same value or the same message."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, create_model

from igdm.runtime import config
from igdm.runtime.configuration_error import ConfigurationError
from igdm.runtime.plain_settings import PlainSettings, Setting, cached_settings
from tests.settings_reference import SAMPLES

BOUNDS: list[dict[str, Any]] = [{}, {"gt": 0}, {"ge": 0}, {"ge": 2}, {"gt": 0, "le": 10}, {"gt": 1, "le": 59}]
BOUNDS += [{"lt": 5}, {"ge": -3, "lt": 7}, {"le": 1}]
# Each Setting with the type of the pydantic field it stands for: a field typed X | None reads a text as X does.
SETTINGS: list[tuple[Setting, Any]] = [(Setting(kind, **bounds), kind) for kind in (int, float) for bounds in BOUNDS]
SETTINGS += [(Setting(bool), bool), (Setting(str), str), (Setting(str, min_length=1), str)]
SETTINGS += [(Setting(str, max_length=3), str), (Setting(str, min_length=2, max_length=4), str)]
SETTINGS += [(Setting(str), str | None), (Setting(str, min_length=1), str | None), (Setting(int, gt=0), int | None)]
EVERY_SAMPLE = [text for texts in SAMPLES.values() for text in texts]


def model_of(setting: Setting, annotation: Any) -> type[BaseModel]:
    """The pydantic model of one field declared as ``setting`` says."""
    constraints = {name: getattr(setting, name) for name in ("min_length", "max_length", "gt", "ge", "lt", "le")}
    field = Field(None, **{name: value for name, value in constraints.items() if value is not None})
    model: type[BaseModel] = create_model("One", value=(annotation, field))
    return model


def both(setting: Setting, annotation: Any, text: str) -> tuple[str, str]:
    try:
        plain = repr(setting.read(text))
    except ValueError as exc:
        plain = str(exc)
    try:
        model = repr(model_of(setting, annotation).model_validate({"value": text}).value)  # type: ignore[attr-defined]
    except ValidationError as exc:
        model = "; ".join(error["msg"] for error in exc.errors(include_url=False))
    return plain, model


@pytest.mark.parametrize(("setting", "annotation"), SETTINGS, ids=repr)
def test_each_sample_is_read_as_pydantic_reads_it(setting: Setting, annotation: Any) -> None:
    for text in EVERY_SAMPLE:
        plain, model = both(setting, annotation, text)
        assert plain == model, repr(text)


# Texts near what pydantic takes: digits, signs, points, exponents, underscores, the words it knows, whitespace of
# both kinds (Unicode's, which it strips, and Python's \x1c-\x1f, which it does not), a non-ASCII digit, a surrogate.
ALPHABET = "0123456789+-._eEinfatyNIFTYo \t\n\x0b\x0c\x1c\x85\xa0\u2003\u3000\u0663\udcff"
texts = st.text(alphabet=ALPHABET, max_size=12) | st.sampled_from(EVERY_SAMPLE)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(SETTINGS), texts)
def test_any_text_is_read_as_pydantic_reads_it(case: tuple[Setting, Any], text: str) -> None:
    plain, model = both(*case, text)
    assert plain == model


def test_long_integers_are_refused_as_pydantic_refuses_them() -> None:
    for text in ["1" * 4300, "1" * 4301, "-" + "1" * 4300, "-" + "1" * 4301, "0" + "1" * 4301, "1" * 4301 + "x"]:
        for text_ in (text, f" {text}", f"+{text}", f"{text}.0", f"1_{text}"):
            plain, model = both(Setting(int), int, text_)
            assert plain == model, text_[:8]


class Example(PlainSettings):
    """A settings class as the functions declare theirs (without the dataclass, for the test)."""

    model_fields = {  # noqa: RUF012 - a class attribute, as the functions' ClassVar
        "name": Setting(str, required=True, min_length=1),
        "rate": Setting(float, gt=0),
        "flag": Setting(bool),
    }

    def __init__(self, **values: Any) -> None:
        self.values = values


def test_a_refusal_names_every_variable_in_the_fields_order() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Example.from_environment({"RATE": "0", "FLAG": "maybe"})
    assert str(caught.value) == (
        "invalid configuration: NAME: Field required; RATE: Input should be greater than 0; "
        "FLAG: Input should be a valid boolean, unable to interpret input"
    )
    assert Example.from_environment({"NAME": "n", "FLAG": "on"}).values == {"name": "n", "flag": True}


def test_settings_are_read_once_until_the_cache_is_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAME", "first")
    config.clear_settings_cache()
    first = cached_settings(Example)
    monkeypatch.setenv("NAME", "second")
    assert cached_settings(Example) is first
    assert Example.from_environment().values == {"name": "second"}
    config.clear_settings_cache()
    assert cached_settings(Example).values == {"name": "second"}
    config.clear_settings_cache()
