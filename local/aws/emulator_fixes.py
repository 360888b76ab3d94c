"""Where moto, the local stack's AWS emulator, differs from AWS in ways a long-running `make run` feels.

Written against moto 5.2.5 (the pin in requirements-dev.txt); tests/integration/test_local_emulator.py
pins the behaviour, so a moto upgrade that changes what is patched here fails there first. ``apply()``
patches moto's classes in this process; ``start_emulator`` (local/stack.py) calls it before the
ThreadedMotoServer starts. Five defects, each fixed as narrowly as it allows:

1. TransactWriteItems copies whole tables (moto/dynamodb/models/__init__.py, transact_write_items,
   lines 607-615): to be able to roll back, moto deep-copies every table the transaction names, once
   per item of the transaction. A transaction of k items on a table of n items copies k * n items,
   so each webhook costs more than the last. DynamoDB's cost does not depend on the table's size.
   Fixed: the whole-table copy becomes a no-op, and a journal of the items the transaction names
   (at most 100, copied before it runs) restores them if it fails. moto's own code still checks
   every condition and writes every item, in its order, so condition semantics do not change, and
   the transaction stays all-or-nothing: a cancelled one leaves no write.

2. Every model object is kept forever (moto/core/common_models.py, BaseModel.__new__, line 14):
   moto appends each object it creates to its class's ``instances_tracked`` list, for its dashboard
   (/moto-api/data.json), and never removes it. deepcopy makes objects through ``__new__`` too, so
   the copies of (1) never die: memory grows with the sum of the table sizes over all transactions
   (7.7 GB after 2,000 webhooks of one event each), and more slowly with every item read or updated
   (moto copies those as well) and every SQS message received. Fixed: the lists hold weak
   references, so the dashboard still lists every live object and nothing else.

3. FIFO deduplication forgets a message once it is deleted (moto/sqs/models.py, Queue.add_message,
   lines 556-571): moto looks for the deduplication id only among the messages still on the queue.
   SQS keeps every deduplication id for 5 minutes from the message's send, "even after the message
   has been received and deleted" (SQS Developer Guide, FIFO key terms), within the queue's
   DeduplicationScope (the whole queue, or the message group). Locally, a status callback repeated
   after the callback poller had delivered and deleted the first arrived twice. Fixed: each FIFO
   queue remembers the deduplication ids sent in the last 5 minutes, and drops a repeat as SQS does
   (the send still succeeds).

4. A send walks the whole queue, many times (moto/sqs/models.py, SQSBackend._validate_message and
   send_message, lines 812, 819 and 876): to read the queue's ContentBasedDeduplication, moto builds
   every queue attribute, including the three ApproximateNumberOfMessages* counts, each a walk over
   every message on the queue (lines 496-506); it does so up to 5 times per message sent. The local
   stack's events queue has no consumer unless you add one, so it holds every event, and each webhook
   cost more than the last (29 ms per POST with an empty queue, 261 ms with 5,000 events on it). An
   SQS send does not depend on the queue's depth. Fixed: while moto sends, those counts are not
   computed (nothing a send returns contains them); GetQueueAttributes still counts.

5. A table's stream keeps every record forever (moto/dynamodb/models/table.py, StreamShard.add, line 231):
   DynamoDB keeps a stream's records 24 hours; moto appends each write's record, with its images, to a list
   that never shrinks, so a long `make run` (whose table has a stream for the fan-out) grows by every write.
   Fixed: a shard keeps its last STREAM_RECORDS_KEPT records, its starting sequence number moving with the
   oldest one kept, so every sequence number still names the same record; an iterator older than what is kept
   reads from the oldest record kept (DynamoDB would answer TrimmedDataAccessException), where moto asserted.
"""

import copy
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# What apply() replaced, by attribute name, to call and to put back (tests apply the fixes for a while;
# `make run` keeps them).
_originals: dict[str, tuple[Any, Any]] = {}
_patching = threading.Lock()
_deduplicating = threading.Lock()  # the emulator answers requests in threads


def apply() -> None:
    """Patch moto in this process; calling it again does nothing."""
    import moto.dynamodb.models as dynamodb_models
    from moto.core.common_models import BaseModel
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard, Table
    from moto.sqs.models import Queue, SQSBackend

    counts: dict[str, Any] = {name: vars(Queue).get(name) for name in _QUEUE_COUNTS}
    if (
        vars(dynamodb_models).get("copy") is not copy
        or "__new__" not in vars(BaseModel)
        or not all(isinstance(count, property) for count in counts.values())
        or not {"add", "get"} <= set(vars(StreamShard))
    ):
        raise RuntimeError("moto has changed: review local/aws/emulator_fixes.py against the new version")
    patches: list[tuple[Any, str, Any]] = [
        (dynamodb_models, "copy", _CopyExceptTables(Table)),
        (DynamoDBBackend, "transact_write_items", _transact_write_items),
        (BaseModel, "__new__", staticmethod(_new_tracked_weakly)),
        (Queue, "add_message", _add_message),
        (StreamShard, "add", _add_stream_record),
        (StreamShard, "get", _stream_records),
        (SQSBackend, "send_message", _sending("send_message")),
        (SQSBackend, "send_message_batch", _sending("send_message_batch")),
        *((Queue, name, _not_counted_while_sending(count)) for name, count in counts.items()),
    ]
    with _patching:
        if _originals:
            return
        for owner, name, replacement in patches:
            _originals[name] = (owner, vars(owner)[name])
            setattr(owner, name, replacement)


def revert() -> None:
    """Undo apply(), for tests that must leave moto as they found it."""
    from moto.core.model_instances import model_data

    with _patching:
        for name, (owner, original) in _originals.items():
            setattr(owner, name, original)
        _originals.clear()
        for models in model_data.values():
            for model in models.values():
                tracked = vars(model).get("instances_tracked")
                if isinstance(tracked, _LiveInstances):
                    model.instances_tracked = list(tracked)  # type: ignore[attr-defined]


def _original(name: str) -> Any:
    """What apply() replaced (every patched attribute name is unique across moto's patched classes)."""
    return _originals[name][1]


# 1. TransactWriteItems ------------------------------------------------------------------------------


class _CopyExceptTables:
    """The ``copy`` module as moto.dynamodb.models sees it: a Table is not copied. The only Table that
    module copies is transact_write_items' rollback snapshot (its other deepcopy, in update_item, is of
    one item, and backups copy tables in moto/dynamodb/models/table.py, which keeps the real module).
    moto's rollback then puts the same table back, a no-op, and _Journal does the rollback instead."""

    def __init__(self, table_class: type) -> None:
        self._table_class = table_class

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, self._table_class) else copy.deepcopy(value, memo)


@dataclass
class _Before:
    table: Any
    hash_key: Any
    range_key: Any
    item: Any  # a copy of the item before the transaction, or None where there was none


class _Journal:
    """The items a transaction names, as they were before it ran: one copy per item, not per table."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        self._before: dict[tuple[str, Any, Any], _Before] = {}
        self._streams: list[tuple[Any, int]] = []
        for action in transact_items[:100]:  # moto refuses more than 100 before writing anything
            self._remember(backend, action)

    def _remember(self, backend: Any, action: dict[str, Any]) -> None:
        # Any action whose table or key cannot be read here fails in moto before it writes anything.
        try:
            _, operation = next(iter(action.items()))
            table = backend.tables[operation["TableName"]]
            if "Item" in operation:  # Put names its key inside the item
                key_names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
                key = {name: operation["Item"][name] for name in key_names}
            else:
                key = operation["Key"]
            hash_key, range_key = backend.get_keys_value(table, key)
        except Exception:  # see above: nothing of this action to roll back
            return
        if (table.name, hash_key, range_key) in self._before:
            return  # moto cancels a transaction that names an item twice; the first copy is the original
        current = table.get_item(hash_key, range_key)
        self._before[(table.name, hash_key, range_key)] = _Before(
            table, hash_key, range_key, copy.deepcopy(current) if current is not None else None
        )
        if table.stream_shard is not None and all(shard is not table.stream_shard for shard, _ in self._streams):
            self._streams.append((table.stream_shard, len(table.stream_shard.items)))

    def restore(self) -> None:
        for before in self._before.values():
            items = before.table.items
            if before.table.has_range_key:
                if before.item is not None:
                    items[before.hash_key][before.range_key] = before.item
                elif before.hash_key in items:
                    items[before.hash_key].pop(before.range_key, None)
                    if not items[before.hash_key]:
                        del items[before.hash_key]
            elif before.item is not None:
                items[before.hash_key] = before.item
            else:
                items.pop(before.hash_key, None)
        for shard, length in self._streams:  # the stream records of the writes just undone
            del shard.items[length:]


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    journal = _Journal(self, transact_items)
    try:
        _original("transact_write_items")(self, transact_items)
    except BaseException:
        # Whatever moto raised (a cancellation, or a validation error it found after earlier actions had
        # written), DynamoDB has written nothing.
        journal.restore()
        raise


# 2. Instance tracking ------------------------------------------------------------------------------


class _LiveInstances:
    """A class's ``instances_tracked``, holding its objects weakly: iterating yields the live ones."""

    def __init__(self, existing: Any = ()) -> None:
        self._references: list[weakref.ref[Any]] = []
        self._prune_at = 1024
        for instance in existing:
            self.append(instance)

    def append(self, instance: Any) -> None:
        try:
            reference = weakref.ref(instance)
        except TypeError:  # a model without weak reference support: left out of the dashboard
            return
        self._references.append(reference)
        if len(self._references) >= self._prune_at:  # drop the dead: amortised O(1) per append
            self._references = [r for r in self._references if r() is not None]
            self._prune_at = max(1024, 2 * len(self._references))

    def __iter__(self) -> Iterator[Any]:
        for reference in list(self._references):
            instance = reference()
            if instance is not None:
                yield instance

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _new_tracked_weakly(cls: Any, *args: Any, **kwargs: Any) -> Any:
    from moto.core.common_models import BaseModel

    instance = super(BaseModel, cls).__new__(cls)  # what BaseModel.__new__ does, then its tracking
    tracked = cls.__dict__.get("instances_tracked")
    if not isinstance(tracked, _LiveInstances):  # first use, or moto's reset_model_data put a list back
        tracked = _LiveInstances(tracked or ())
        cls.instances_tracked = tracked
    tracked.append(instance)
    return instance


# 3. FIFO deduplication -----------------------------------------------------------------------------

DEDUPLICATION_INTERVAL_MS = 300_000  # SQS's 5 minutes (moto.sqs.models.DEDUPLICATION_TIME_IN_SECONDS)


def _add_message(self: Any, message: Any) -> None:
    # A message that was received before is being moved to the dead-letter queue, not sent: only sends
    # are deduplicated.
    if self.fifo_queue and message.receipt_handle is None and message.deduplication_id is not None:
        scope = getattr(self, "deduplication_scope", "queue")
        key = (message.group_id, message.deduplication_id) if scope == "messageGroup" else message.deduplication_id
        with _deduplicating:
            window = self.__dict__.setdefault("_deduplication_window", OrderedDict())
            now = message.sent_timestamp  # moto's clock when the message was sent
            while window and next(iter(window.values())) <= now - DEDUPLICATION_INTERVAL_MS:
                window.popitem(last=False)  # oldest first: the window is in send order
            if key in window:
                return  # accepted but not delivered, as SQS does
            window[key] = now
    if self.lambda_event_source_mappings:  # moto's own Lambda event sources, which the local stack never uses
        _original("add_message")(self, message)
        return
    # The rest of moto's add_message, without its scan of the queue for the deduplication id: that scan
    # misses deleted messages, ignores DeduplicationScope, and costs a pass over the queue per send.
    with self._messages_lock:
        self._messages.append(message)
        self._messages_lock.notify_all()


# 4. The cost of a send -----------------------------------------------------------------------------

_QUEUE_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
_send_in_progress = threading.local()


def _sending(name: str) -> Any:
    """SQSBackend.send_message or send_message_batch, marked as a send for _not_counted_while_sending."""

    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_send_in_progress, "depth", 0)
        _send_in_progress.depth = depth + 1
        try:
            return _original(name)(self, *args, **kwargs)
        finally:
            _send_in_progress.depth = depth

    return send


def _not_counted_while_sending(count: property) -> property:
    """One of the queue's ApproximateNumberOfMessages* counts: 0 while moto sends, which reads the
    queue's attributes only for ContentBasedDeduplication."""
    counted: Any = count.fget

    def fget(self: Any) -> Any:
        return 0 if getattr(_send_in_progress, "depth", 0) else counted(self)

    return property(fget)


STREAM_RECORDS_KEPT = 10_000  # a stream poller reads within a second; minutes of writes stay readable


def _add_stream_record(self: Any, old: Any, new: Any) -> None:
    _original("add")(self, old, new)
    extra = len(self.items) - STREAM_RECORDS_KEPT
    if extra > 0:
        del self.items[:extra]
        self.starting_sequence_number += extra


def _stream_records(self: Any, start: int, quantity: int) -> list[dict[str, Any]]:
    return _original("get")(self, max(start, self.starting_sequence_number), quantity)  # type: ignore[no-any-return]
