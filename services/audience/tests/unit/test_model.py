"""The audience's input rules: ids, emails, names, attributes and who may change a status to what."""

from __future__ import annotations

import pytest

from audience.domain import model
from mailstify_servicekit import Conflict, InvalidInput, encode_cursor


@pytest.mark.parametrize("raw, expected", [("1", 1), ("42", 42), (str(2**63 - 1), 2**63 - 1)])
def test_ids_are_decimal_bigints(raw: str, expected: int) -> None:
    assert model.parse_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "0", "-1", "abc", "1.5", " 1", "١٢", str(2**63)])
def test_strings_that_cannot_be_our_ids_are_not_found_rather_than_errors(raw: str) -> None:
    assert model.parse_id(raw) is None


def test_keyset_bounds_are_optional_but_must_be_ids_when_given() -> None:
    assert model.parse_position(None, "after") is None
    assert model.parse_position("0", "after") == 0
    assert model.parse_position("17", "up_to") == 17
    with pytest.raises(InvalidInput, match="up_to must be a subscriber id"):
        model.parse_position("x7", "up_to")


def test_page_cursors_remember_the_last_id_seen() -> None:
    subscriber = model.Subscriber(
        id=41, account_id="a", list_id=1, email="a@example.com", status="subscribed", created_at=None, updated_at=None
    )  # type: ignore[arg-type]
    assert model.after_cursor(encode_cursor(model.cursor_position(subscriber))) == 41
    assert model.after_cursor(None) == 0


@pytest.mark.parametrize("position", [{}, {"after": "41"}, {"after": -1}, {"after": True}, {"after": 2**63}])
def test_cursors_without_a_usable_position_are_refused(position: dict) -> None:
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        model.after_cursor(encode_cursor(position))


def test_emails_are_stored_trimmed_and_lower_cased_whole() -> None:
    assert model.clean_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("raw", ["", "   ", "ann", "ann@", "@example.com", "ann@@example.com", "ann lee@example.com"])
def test_invalid_emails_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        model.clean_email(raw)
    assert refused.value.detail  # a human sentence, shown to the API caller


def test_no_dns_lookup_decides_validity() -> None:
    # A syntactically fine address on a domain that does not resolve is accepted: delivery decides.
    assert model.clean_email("someone@no-such-domain-mailstify-zz.com") == "someone@no-such-domain-mailstify-zz.com"


def test_list_names_are_trimmed_and_must_not_be_blank_or_huge() -> None:
    assert model.clean_list_name("  Newsletter ") == "Newsletter"
    with pytest.raises(InvalidInput, match="must not be empty"):
        model.clean_list_name("   ")
    with pytest.raises(InvalidInput, match="at most"):
        model.clean_list_name("x" * (model.MAX_LIST_NAME + 1))


def test_blank_person_names_are_absent() -> None:
    assert model.clean_person_name("  Ann ", "first_name") == "Ann"
    assert model.clean_person_name("   ", "first_name") is None
    assert model.clean_person_name(None, "last_name") is None
    with pytest.raises(InvalidInput, match="last_name"):
        model.clean_person_name("x" * 201, "last_name")


def test_attributes_are_bounded_in_size() -> None:
    assert model.clean_attributes(None) == {}
    assert model.clean_attributes({"plan": "pro"}) == {"plan": "pro"}
    with pytest.raises(InvalidInput, match="KiB"):
        model.clean_attributes({"blob": "x" * model.MAX_ATTRIBUTES_BYTES})


@pytest.mark.parametrize(
    "current, requested",
    [
        ("subscribed", "unsubscribed"),
        ("unsubscribed", "subscribed"),
        ("bounced", "subscribed"),
        ("bounced", "unsubscribed"),
        ("complained", "unsubscribed"),
    ],
)
def test_operators_may_subscribe_and_unsubscribe(current: str, requested: str) -> None:
    assert model.next_status(current, requested) == requested  # type: ignore[arg-type]


@pytest.mark.parametrize("requested", ["bounced", "complained"])
def test_delivery_facts_cannot_be_set_by_hand(requested: str) -> None:
    with pytest.raises(InvalidInput, match="recorded by delivery"):
        model.next_status("subscribed", requested)


def test_unknown_statuses_are_refused() -> None:
    with pytest.raises(InvalidInput, match="must be one of"):
        model.next_status("subscribed", "active")


def test_someone_who_complained_is_not_resubscribed_by_hand() -> None:
    with pytest.raises(Conflict, match="spam"):
        model.next_status("complained", "subscribed")


@pytest.mark.parametrize(
    "current, leaves", [("subscribed", True), ("unsubscribed", False), ("bounced", False), ("complained", False)]
)
def test_only_a_subscribed_subscriber_is_changed_by_an_unsubscribe_link(current: str, leaves: bool) -> None:
    assert model.leaves_by_link(current) is leaves  # type: ignore[arg-type]
