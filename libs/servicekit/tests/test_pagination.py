"""Cursors are opaque to clients and survive a round trip; anything else a client sends is a 422."""

from __future__ import annotations

import pytest

from mailstify_servicekit import InvalidInput, decode_cursor, encode_cursor, split_page


def test_a_cursor_round_trips_its_position() -> None:
    cursor = encode_cursor({"after": 123456789012})
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # safe in a query string
    assert decode_cursor(cursor) == {"after": 123456789012}


@pytest.mark.parametrize("tampered", ["", "%%%", "not-base64!", "bnVsbA", "WzFd", "eyJhZnRlciI6"])
def test_tampered_cursors_are_the_callers_mistake(tampered: str) -> None:
    # "bnVsbA" is `null` and "WzFd" is `[1]`: valid JSON, but not a position.
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        decode_cursor(tampered)


def test_split_page_keeps_limit_items_and_points_after_the_last() -> None:
    items, cursor = split_page([1, 2, 3], 2, lambda item: {"after": item})
    assert items == [1, 2]
    assert cursor is not None and decode_cursor(cursor) == {"after": 2}


def test_the_last_page_has_no_cursor() -> None:
    assert split_page([1, 2], 2, lambda item: {"after": item}) == ([1, 2], None)
    assert split_page([], 5, lambda item: {"after": item}) == ([], None)
