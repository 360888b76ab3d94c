"""igdm.store.attributes writes what boto3's TypeSerializer writes, value for value, through its short path for
the table's own types and boto3's for the rest."""

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from igdm.store.attributes import from_attribute, to_attribute, to_attributes

BOTO3 = TypeSerializer()

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.text()
    | st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
    | st.integers()  # past 38 digits: boto3 refuses it, and so must we
    | st.decimals(allow_nan=False, allow_infinity=False, places=6),
    lambda members: st.lists(members, max_size=4) | st.dictionaries(st.text(max_size=8), members, max_size=4),
    max_leaves=20,
)


def boto3_or_error(value: Any) -> Any:
    try:
        return BOTO3.serialize(value)
    except Exception as exc:
        return type(exc)


def ours_or_error(value: Any) -> Any:
    try:
        return to_attribute(value)
    except Exception as exc:
        return type(exc)


def same_everywhere(value: Any) -> str:
    """A parameter's id that is the same in every process (pytest-xdist's workers must collect the same ids): a
    set's members sorted, whatever the hash seed; a bare object by its type, not its address."""
    if isinstance(value, set) and value:
        return "{" + ", ".join(sorted(map(repr, value))) + "}"
    if type(value) is object:
        return "object()"
    return repr(value)


@given(plain)
def test_every_value_is_written_as_boto3_writes_it(value: Any) -> None:
    assert ours_or_error(value) == boto3_or_error(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a", "b"},
        {1, 2},
        b"\x00\x01",
        Binary(b"\x02"),
        (1, "two"),
        Decimal("1.500000"),
        {"nested": [True, None, {"n": 10**37}]},
        10**38,
        -(10**38),
        1.5,
        float("nan"),
        set(),
        object(),
    ],
    ids=same_everywhere,
)
def test_the_types_the_short_path_leaves_to_boto3_come_out_the_same(value: Any) -> None:
    assert ours_or_error(value) == boto3_or_error(value)


def test_an_item_leaves_none_out_and_keeps_it_nested_as_null() -> None:
    item = to_attributes({"pk": "CONV#1#2", "seen": None, "parts": [None, 3], "ok": True})
    assert item == {"pk": {"S": "CONV#1#2"}, "parts": {"L": [{"NULL": True}, {"N": "3"}]}, "ok": {"BOOL": True}}
    assert from_attribute(item["parts"]) == [None, 3]
