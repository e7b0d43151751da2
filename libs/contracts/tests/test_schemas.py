"""The committed JSON Schemas are the published contract: a model change that alters one must be
deliberate (re-export and review the diff), never accidental."""

import pytest

from mailstify_contracts import ALL_EVENTS, DeliverEmail, Recipient, decode_event
from mailstify_contracts.schemas import SCHEMA_DIR, schema_documents


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_model_matches_committed_schema(name: str) -> None:
    committed = SCHEMA_DIR / name
    assert committed.exists(), f"{name} is not exported: run python -m mailstify_contracts.schemas"
    assert schema_documents()[name] == committed.read_text(), (
        f"{name} changed: a published contract broke. Add an optional field or a new version, then "
        "re-export with python -m mailstify_contracts.schemas"
    )


def test_every_committed_schema_still_has_a_model() -> None:
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == set(schema_documents())


def test_events_round_trip_through_json_with_their_wire_type() -> None:
    event = DeliverEmail(
        account_id="a1",
        campaign_id="c1",
        content_key="c1",
        recipient=Recipient(subscriber_id="s1", email="ann@example.com", first_name="Ann"),
    )
    decoded = decode_event(event.to_json())
    assert decoded == event
    assert decoded.type == "mail.deliver"
    assert len({e.wire_type() for e in ALL_EVENTS}) == len(ALL_EVENTS)


def test_decode_rejects_unknown_types() -> None:
    with pytest.raises(ValueError):
        decode_event(b'{"type": "nope"}')
    with pytest.raises(ValueError):
        decode_event(b"not json")
