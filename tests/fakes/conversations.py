"""Instagram's Conversations API in memory, for the reconciler's unit tests: conversations of one account
with their messages, newest first as Meta lists them, details for each conversation's 20 most recent only,
and every call counted (and paced through the service's ``pace``, as the real client does)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from igdm.meta.instagram_login import LoginError
from reconciler.conversations import Conversation, MessageDetail, MessageGone, MessageRef

DETAILS_KEPT = 20


@dataclass
class _Thread:
    account_id: str
    customer_id: str
    messages: list[MessageDetail] = field(default_factory=list)  # oldest first


class MemoryConversations:
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._threads: dict[str, _Thread] = {}
        self.calls: list[str] = []  # "conversations", "messages <cid>", "message <mid>"
        self.refuse_with: LoginError | None = None  # every call raises it, while set
        self.deleted: set[str] = set()  # messages the customer deleted: Meta gives no details

    def add(
        self,
        customer_id: str,
        mid: str,
        at: float,
        *,
        text: str | None = "hi",
        from_account: bool = False,
        attachments: tuple[tuple[str, str], ...] = (),
    ) -> MessageDetail:
        thread = self._threads.setdefault(self.thread_id(customer_id), _Thread(self.account_id, customer_id))
        sender, recipient = (self.account_id, customer_id) if from_account else (customer_id, self.account_id)
        detail = MessageDetail(
            mid,
            at,
            sender,
            (recipient,),
            text,
            attachments,
            {"id": mid, "created_time": int(at), "from": {"id": sender}, "to": {"data": [{"id": recipient}]}},
        )
        thread.messages.append(detail)
        thread.messages.sort(key=lambda m: m.created_at)
        return detail

    @staticmethod
    def thread_id(customer_id: str) -> str:
        return f"t_{customer_id}"

    # ---- the port

    def conversations(
        self, token: str, account_id: str, *, since: float, pace: Callable[[], None]
    ) -> Iterator[Conversation]:
        self._call("conversations", pace)
        threads = sorted(self._threads.items(), key=lambda t: -t[1].messages[-1].created_at)
        for conversation_id, thread in threads:
            updated = thread.messages[-1].created_at
            if updated < since:
                return
            yield Conversation(conversation_id, updated)

    def messages(
        self, token: str, conversation_id: str, *, pace: Callable[[], None], since: float | None = None
    ) -> list[MessageRef]:
        self._call(f"messages {conversation_id}", pace)
        return [MessageRef(m.message_id, m.created_at) for m in reversed(self._threads[conversation_id].messages)]

    def conversation_with(
        self, token: str, account_id: str, customer_id: str, *, pace: Callable[[], None]
    ) -> str | None:
        self._call(f"conversation_with {customer_id}", pace)
        return self.thread_id(customer_id) if self.thread_id(customer_id) in self._threads else None

    def message(self, token: str, message_id: str, *, pace: Callable[[], None]) -> MessageDetail:
        self._call(f"message {message_id}", pace)
        for thread in self._threads.values():
            ids = [m.message_id for m in thread.messages]
            if message_id in ids:
                if ids.index(message_id) < len(ids) - DETAILS_KEPT or message_id in self.deleted:
                    raise MessageGone("(#100) This message has been deleted")
                return thread.messages[ids.index(message_id)]
        raise LoginError(f"(#100) Unknown message {message_id}", 400, 100)

    def _call(self, what: str, pace: Callable[[], None]) -> None:
        pace()
        self.calls.append(what)
        if self.refuse_with is not None:
            raise self.refuse_with
