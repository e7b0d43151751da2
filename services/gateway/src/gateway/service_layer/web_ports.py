"""What the web app's pages need from the internal services and the dev inbox, as typed values.

The pages call the services' public routes the way the proxy does (internal token + account header,
through `adapters/service_api.py`), never the gateway itself. A service's refusal arrives as the
servicekit error of its status (NotFound, Conflict, InvalidInput with `field`), a service that is down
or slow as UpstreamUnavailable, so pages can say what went wrong in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class MailingList:
    id: str
    name: str
    description: str = ""
    subscriber_count: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # by status, where the audience reports it
    created_at: str = ""


@dataclass(frozen=True)
class Subscriber:
    id: str
    list_id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    status: str = "subscribed"
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str  # bounced | complained
    detail: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    subject: str
    list_id: str
    from_name: str
    from_email: str
    status: str
    body_html: str = ""
    reply_to: str | None = None
    body_text: str | None = None
    total: int | None = None
    sent_count: int = 0
    failed_count: int = 0
    unknown_count: int = 0
    cancelled_count: int = 0
    unsubscribe_count: int = 0
    last_error: str | None = None
    created_at: str = ""
    send_at: str | None = None
    sent_at: str | None = None


@dataclass(frozen=True)
class Delivery:
    subscriber_id: str
    email: str
    status: str
    detail: str = ""
    recorded_at: str = ""


@dataclass(frozen=True)
class ImportRowError:
    line: int
    reason: str


@dataclass(frozen=True)
class ImportJob:
    id: str
    status: str
    processed: int = 0
    imported: int = 0
    skipped: int = 0
    updated: int = 0
    error_count: int = 0
    total: int | None = None
    errors: list[ImportRowError] = field(default_factory=list)
    detail: str | None = None  # why a failed import failed as a whole


@dataclass(frozen=True)
class InboxMessage:
    id: str
    subject: str
    from_: str
    to: str
    rcpt_tos: list[str]
    date: str = ""
    message_id: str = ""
    text: str = ""
    html: str = ""
    received_at: str = ""


class AudienceApi(Protocol):
    async def lists(self, account_id: str, cursor: str | None = None) -> Listing[MailingList]: ...

    async def get_list(self, account_id: str, list_id: str) -> MailingList: ...

    async def create_list(self, account_id: str, name: str, description: str | None) -> MailingList: ...

    async def delete_list(self, account_id: str, list_id: str) -> None: ...

    async def subscribers(
        self, account_id: str, list_id: str, *, q: str | None, status: str | None, cursor: str | None, limit: int
    ) -> Listing[Subscriber]: ...

    async def get_subscriber(self, account_id: str, list_id: str, subscriber_id: str) -> Subscriber: ...

    async def add_subscriber(self, account_id: str, list_id: str, fields: dict[str, Any]) -> Subscriber: ...

    async def update_subscriber(
        self, account_id: str, list_id: str, subscriber_id: str, fields: dict[str, Any]
    ) -> Subscriber: ...

    async def delete_subscriber(self, account_id: str, list_id: str, subscriber_id: str) -> None: ...

    async def start_import(self, account_id: str, list_id: str, filename: str, content: bytes) -> ImportJob: ...

    async def get_import(self, account_id: str, import_id: str) -> ImportJob: ...

    async def suppressions(self, account_id: str, cursor: str | None = None) -> Listing[Suppression]: ...

    async def lift_suppression(self, account_id: str, email: str) -> None: ...


class CampaignApi(Protocol):
    async def campaigns(self, account_id: str, cursor: str | None = None) -> Listing[Campaign]: ...

    async def get(self, account_id: str, campaign_id: str) -> Campaign: ...

    async def create(self, account_id: str, fields: dict[str, Any]) -> Campaign: ...

    async def update(self, account_id: str, campaign_id: str, fields: dict[str, Any]) -> Campaign: ...

    async def delete(self, account_id: str, campaign_id: str) -> None: ...

    async def action(self, account_id: str, campaign_id: str, action: str, body: dict[str, Any]) -> Campaign | None:
        """POST /campaigns/{id}/{action} (send, pause, resume, cancel, test, retry-failed, duplicate):
        the campaign it answers with, when it answers with one."""
        ...

    async def preview(self, account_id: str, campaign_id: str, subscriber_id: str | None) -> str: ...

    async def deliveries(
        self, account_id: str, campaign_id: str, *, status: str | None, q: str | None, cursor: str | None
    ) -> Listing[Delivery]: ...


class InboxReader(Protocol):
    """The dev SMTP inbox (mailstify_devstack.inbox's HTTP API)."""

    async def messages(self) -> list[InboxMessage]: ...

    async def message(self, message_id: str) -> InboxMessage | None: ...

    async def raw(self, message_id: str) -> bytes | None: ...


@dataclass(frozen=True)
class WebBackends:
    """Everything the web pages read and change, wired in bootstrap; `inbox` only in the dev stack."""

    audience: AudienceApi
    campaigns: CampaignApi
    inbox: InboxReader | None = None
