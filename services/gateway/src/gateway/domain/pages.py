"""Pure rules of the web pages: which campaign buttons a status allows, how a badge and a progress
bar read, and what a submitted form means."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from mailstify_servicekit.errors import InvalidInput

SUBSCRIBER_STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
CAMPAIGN_FIELDS = ("name", "subject", "list_id", "from_name", "from_email", "reply_to", "body_html")
SUBSCRIBER_FIELDS = ("email", "first_name", "last_name")

# What the editor's insert buttons put into the body (API.md's merge fields).
MERGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("First name", '{{ subscriber.first_name | default("there") }}'),
    ("Last name", "{{ subscriber.last_name }}"),
    ("Email", "{{ subscriber.email }}"),
    ("Unsubscribe link", "{{ unsubscribe_url }}"),
)

# Status → the actions its buttons may ask for; the campaign service still decides (409 otherwise).
ACTIONS_BY_STATUS: dict[str, tuple[str, ...]] = {
    "draft": ("send", "test", "duplicate"),
    "scheduled": ("unschedule", "cancel", "duplicate"),
    "sending": ("pause", "cancel", "duplicate"),
    "paused": ("resume", "cancel", "duplicate"),
    "sent": ("duplicate",),
    "cancelled": ("duplicate",),
}
ACTION_LABELS = {
    "send": "Send…",
    "schedule": "Schedule",
    "unschedule": "Back to draft",
    "test": "Send a test",
    "duplicate": "Duplicate",
    "pause": "Pause",
    "resume": "Resume",
    "cancel": "Cancel sending",
    "retry-failed": "Retry failed",
}
ACTIONS = frozenset(ACTION_LABELS)
# Where the numbers still move: the page keeps refreshing them.
LIVE_STATUSES = frozenset({"scheduled", "sending", "paused"})
EDITABLE_STATUSES = frozenset({"draft"})


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, round(100 * self.done / self.total))


def allowed_actions(status: str, failed_count: int = 0, unknown_count: int = 0) -> tuple[str, ...]:
    actions = ACTIONS_BY_STATUS.get(status, ())
    if status in ("sent", "cancelled") and (failed_count or unknown_count):
        actions = ("retry-failed", *actions)
    return actions


def progress(sent: int, failed: int, unknown: int, total: int | None) -> Progress:
    return Progress(sent + failed + unknown, total)


def _clean(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def campaign_fields(form: Mapping[str, object]) -> dict[str, str | None]:
    """The campaign a submitted editor form describes; an empty reply-to means none."""
    fields: dict[str, str | None] = {name: _clean(form.get(name)) for name in CAMPAIGN_FIELDS}
    fields["reply_to"] = fields["reply_to"] or None
    return fields


def subscriber_fields(form: Mapping[str, object]) -> dict[str, str | None]:
    """A subscriber from the inline form; blank names are absent (stored as such by the audience)."""
    fields: dict[str, str | None] = {name: _clean(form.get(name)) for name in SUBSCRIBER_FIELDS}
    for name in ("first_name", "last_name"):
        fields[name] = fields[name] or None
    return fields


def default_from_name(*candidates: str | None) -> str:
    """The first of the candidates (account setting, user's name, account's name) that reads as a
    name. A name with an "@" in it is skipped: an account signed up without a name is named after its
    email, and a From like `"ada@example.com" <news@acme.test>` shows one address while sending from
    another, which mail filters take for phishing. Blank when none fits: the editor asks for one."""
    return next((name for name in candidates if name and "@" not in name), "")


def test_addresses(raw: str) -> list[str]:
    """The addresses typed into the test-send box: separated by commas, spaces or new lines."""
    return [part for part in raw.replace(",", " ").split() if part]


def send_at_utc(value: object) -> str:
    """The ISO time for a `datetime-local` field the page labels as UTC ("2026-12-24T09:30")."""
    text = _clean(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput("choose the date and time to send at (UTC)", field="send_at") from exc
    return moment.replace(tzinfo=UTC).isoformat()


def status_filter(value: str | None) -> str | None:
    return value if value in SUBSCRIBER_STATUSES else None
