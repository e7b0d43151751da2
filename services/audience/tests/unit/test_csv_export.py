"""The export's rows: every column, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from audience.domain import csv_export
from audience.domain.model import Subscriber


def subscriber(**fields: object) -> Subscriber:
    values = {"id": 1, "account_id": "a", "list_id": 1, "email": "ann@example.com", "status": "subscribed",
              "created_at": datetime(2026, 1, 2, tzinfo=UTC), "updated_at": datetime(2026, 1, 2, tzinfo=UTC)}  # fmt: skip
    return Subscriber(**{**values, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_get_a_leading_quote(cell: str) -> None:
    assert csv_export.neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Ann", "", "1=1", "a-b", "'quoted"])
def test_other_cells_are_left_alone(cell: str) -> None:
    assert csv_export.neutralise(cell) == cell


def test_a_row_holds_the_fixed_columns_then_the_attributes_in_header_order() -> None:
    keys = ["city", "plan", "score"]
    person = subscriber(first_name="=evil()", attributes={"plan": "pro", "score": 3, "city": "-x"})
    assert csv_export.header(keys) == ["email", "first_name", "last_name", "status", "created_at", *keys]
    assert csv_export.row(person, keys) == [
        "ann@example.com", "'=evil()", "", "subscribed", "2026-01-02T00:00:00+00:00", "'-x", "pro", "3",
    ]  # fmt: skip


def test_encoded_rows_read_back_as_csv() -> None:
    encoded = csv_export.encode([["a,b", 'say "hi"', "two\nlines"]]).decode()
    assert list(csv.reader(io.StringIO(encoded))) == [["a,b", 'say "hi"', "two\nlines"]]
