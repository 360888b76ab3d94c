"""DynamoDB's attribute values ({"S": ...}, {"N": ...}, {"L": [...]}, ...) to and from plain Python values,
for every item family of the table and the expression values that update them.

Built on boto3's own TypeSerializer and TypeDeserializer, the mapping boto3's resource API uses, rather
than one of our own: the format's corner cases (numbers as strings, nested lists and maps, NULL, sets) are
theirs to keep right. boto3 is loaded by every function already; this module and boto3.dynamodb.types add
about 0.4 ms to a cold start (python -X importtime). Our choices on top of theirs, the same for every item
family:

- None is left out of an item or a set of expression values: an absent attribute is how the table says
  "no value". The one attribute stored as DynamoDB's NULL (a conversation's last message id) is written
  with to_attribute(), which keeps None as {"NULL": True}.
- Numbers are refused as float, as boto3 refuses them: an int, or a Decimal carrying exactly the digits
  the attribute should have (the rate items' six decimals), so the digits written never depend on float
  formatting.
- Numbers come back as int when integral (epoch times, counts, part numbers), else as an exact Decimal that
  the caller turns into a float if it wants one.

Writing goes through a short path of our own for the values the table is made of (str, bool, int, None, and
dicts and lists of them), and through boto3's serializer for everything else (Decimal, sets, bytes, tuples, and
the types it refuses, such as float): a 1000-event POST writes about 16,000 attribute values, and boto3's
serializer, which finds each value's type through a chain of checks and a Decimal context, was a tenth of the
webhook's CPU per event. tests/unit/layer/test_attributes.py holds the short path to boto3's output.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# DynamoDB keeps 38 significant digits; boto3 refuses a longer integer (decimal.Rounded), so it goes there.
_LARGEST_EXACT = 10**38


def to_attribute(value: Any) -> dict[str, Any]:
    """One value as DynamoDB's typed attribute value; None becomes {"NULL": True}."""
    kind = type(value)  # exact types only: a subclass (an IntEnum, an OrderedDict) is boto3's to judge
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -_LARGEST_EXACT < value < _LARGEST_EXACT:
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if kind is dict:
        return {"M": {name: to_attribute(member) for name, member in value.items()}}
    if kind is list:
        return {"L": [to_attribute(member) for member in value]}
    # boto3-stubs type an attribute value as a TypedDict; the clients here take and give plain dicts.
    return cast(dict[str, Any], _serializer.serialize(value))


def to_attributes(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """An item, a key or expression attribute values, from plain values; None values are left out."""
    return {name: to_attribute(value) for name, value in mapping.items() if value is not None}


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """One typed attribute value as a plain value (numbers as int when integral, else Decimal)."""
    return _plain(_deserializer.deserialize(cast(Any, attribute)))


def from_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item (or the attributes an update returned) as plain values."""
    return {name: from_attribute(attribute) for name, attribute in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value
