"""Half of a surrogate pair (JSON's "\\ud83d" escape alone, an emoji cut in two) is not Unicode: botocore,
DynamoDB and SQS refuse it. Both ends of the gateway replace it with U+FFFD, which they all take."""

import re
from typing import Any, overload

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@overload
def without_lone_surrogates(value: str) -> str: ...
@overload
def without_lone_surrogates(value: Any) -> Any: ...
def without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate replaced, in strings, dict keys and lists at any depth."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    return value
