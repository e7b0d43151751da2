"""Writing a list as CSV: one row per subscriber, status and attributes as columns, every cell safe
to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (OWASP "CSV injection"): a subscriber who signed up as
`=HYPERLINK(...)` must not run anything on the operator's machine. Such cells get a leading `'`,
which spreadsheets show as text; the import (`csv_import.unneutralise`) takes it off again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

from .csv_import import FORMULA_PREFIXES
from .model import Subscriber

FIXED_COLUMNS = ("email", "first_name", "last_name", "status", "created_at")
# A header of thousands of attribute columns is nobody's spreadsheet; the rest stay in the database.
MAX_ATTRIBUTE_COLUMNS = 500


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def _cell(value: object) -> str:
    if value is None:
        return ""
    return neutralise(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def header(attribute_keys: Sequence[str]) -> list[str]:
    # Attribute names are the operator's own words and go into the header too.
    return [*FIXED_COLUMNS, *(neutralise(key) for key in attribute_keys if key not in FIXED_COLUMNS)]


def row(subscriber: Subscriber, attribute_keys: Sequence[str]) -> list[str]:
    fixed = [
        neutralise(subscriber.email),
        _cell(subscriber.first_name),
        _cell(subscriber.last_name),
        subscriber.status,
        subscriber.created_at.isoformat(),
    ]
    attributes = subscriber.attributes
    return fixed + [_cell(attributes.get(key)) for key in attribute_keys if key not in FIXED_COLUMNS]


def encode(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()
