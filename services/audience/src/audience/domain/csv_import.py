"""Reading a subscriber CSV: what a file must look like, and what each of its rows becomes.

Pure: it reads a binary stream it is given (the upload spooled to disk) a line at a time, so a
file of any size costs one chunk of rows in memory. Two kinds of problem:

- `FileRefused`: the file as a whole is not something we can read (empty, binary, not UTF-8, no
  `email` column, a line over 64 KB...). The import fails and the list is left as it was.
- `RowError`: one row is wrong (an invalid address, a name too long...). It is reported with its
  line number and skipped; the other rows are imported.

Duplicates inside the file: each chunk parts its rows into those whose address certainly has not
appeared earlier in the file (`rows`, most of them) and those whose address may have (`repeats`), by
a fixed-size filter of the addresses seen (`SeenAddresses`), so that the first kind can join the list
chunk by chunk while the file is still being read. Whether a repeat really is one, and of which line,
is decided where the rows are staged, in PostgreSQL — 16 MiB here instead of a million addresses held
in this process.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from mailstify_servicekit.errors import InvalidInput

from .addresses import normalise_address
from .model import MAX_ATTRIBUTES_BYTES, SUBSCRIBER_STATUSES, clean_person_name

MAX_ROW_BYTES = 64 * 1024
CHUNK_ROWS = 10_000
# What a spreadsheet takes for a formula (OWASP "CSV injection"); the export prefixes such cells with
# a quote, and the import takes that quote off again so a round trip gives back the same text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DELIMITERS = (",", ";")

# Header names, compared lower-cased with spaces and hyphens as underscores.
_EMAIL = frozenset({"email", "e_mail", "email_address", "mail"})
_FIRST_NAME = frozenset({"first_name", "firstname", "first", "given_name"})
_LAST_NAME = frozenset({"last_name", "lastname", "last", "surname", "family_name"})
_STATUS = frozenset({"status"})
# Columns our own export writes that are the service's to set, not the file's.
_IGNORED = frozenset({"created_at", "updated_at"})

# (line, email, first_name, last_name, status, attributes as JSON or None): a tuple, not an
# object, because a million of them go by.
ImportRow = tuple[int, str, str | None, str | None, str, str | None]


class SeenAddresses:
    """The addresses of the rows read so far, as a Bloom filter: fixed memory whatever the file's size,
    never a false "not seen", rarely a false "maybe seen" (two bits of 2**27 per address: about 200
    in a million-row file, 0.5% of rows at ten million). Python's string hash is per process, which
    is all one import needs."""

    _BITS = 27
    _MASK = (1 << _BITS) - 1

    def __init__(self) -> None:
        self._bits = bytearray(1 << (self._BITS - 3))  # 16 MiB

    def add(self, address: str) -> bool:
        """Record the address; False when it certainly was not recorded before."""
        hashed = hash(address)
        first, second = hashed & self._MASK, (hashed >> self._BITS) & self._MASK
        bits = self._bits
        first_byte, first_bit, second_byte, second_bit = first >> 3, 1 << (first & 7), second >> 3, 1 << (second & 7)
        if bits[first_byte] & first_bit and bits[second_byte] & second_bit:
            return True
        bits[first_byte] |= first_bit
        bits[second_byte] |= second_bit
        return False


class FileRefused(InvalidInput):
    """The whole file cannot be imported; `detail` says why in words a user can act on."""


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class Chunk:
    # Valid rows whose address appears in no earlier row of the file.
    rows: list[ImportRow] = field(default_factory=list)
    # Valid rows whose address may appear in an earlier row (nearly always a duplicate; rarely a
    # first occurrence that the filter cannot tell apart): the staging area decides.
    repeats: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Data rows read (valid or not); blank lines are not rows.
    processed: int = 0


@dataclass(frozen=True)
class Columns:
    """Where each field is in a row, from the header."""

    count: int
    email: int
    first_name: int | None
    last_name: int | None
    status: int | None
    attributes: tuple[tuple[int, str], ...]


def _header_key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def map_header(header: list[str]) -> Columns:
    known: dict[str, int] = {}
    attributes: list[tuple[int, str]] = []
    seen_attributes: set[str] = set()
    for index, name in enumerate(header):
        key = _header_key(name)
        if not key or key in _IGNORED:
            continue
        role = next(
            (role for role, names in (("email", _EMAIL), ("first_name", _FIRST_NAME), ("last_name", _LAST_NAME),
                                      ("status", _STATUS)) if key in names),
            None,
        )  # fmt: skip
        if role is None:
            attribute = name.strip()
            if attribute in seen_attributes:
                raise FileRefused(f"the header names the column '{attribute}' twice")
            seen_attributes.add(attribute)
            attributes.append((index, attribute))
        elif role in known:
            raise FileRefused(f"the header has two {role} columns ('{header[known[role]].strip()}' and '{name.strip()}')")
        else:
            known[role] = index
    if "email" not in known:
        found = ", ".join(f"'{name.strip()}'" for name in header if name.strip())[:300] or "nothing"
        raise FileRefused(
            f"the first line must be a header with an 'email' column (it has {found}); "
            "first_name and last_name are known, other columns become attributes"
        )
    return Columns(
        count=len(header),
        email=known["email"],
        first_name=known.get("first_name"),
        last_name=known.get("last_name"),
        status=known.get("status"),
        attributes=tuple(attributes),
    )


def sniff_delimiter(header_line: str) -> str:
    """`;` when the header has more semicolons than commas outside quotes (European spreadsheets
    write `;` because `,` is their decimal mark), else `,`."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return ";" if counts[";"] > counts[","] else ","


def unneutralise(value: str) -> str:
    """Undo the export's formula guard: `'=SUM(A1)` → `=SUM(A1)`."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def _refuse_binary_start(start: bytes) -> None:
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused("the file is UTF-16 text; save it as UTF-8 CSV (\"CSV UTF-8\" in spreadsheets)")
    if b"\x00" in start:
        raise FileRefused("the file looks binary (it contains NUL bytes), not like CSV text")


class _Lines:
    """The physical lines of the file, decoded, each at most MAX_ROW_BYTES, numbered; bytes that are
    not UTF-8, or a NUL, become a FileRefused naming the line. Lines are read as bytes and decoded
    one by one so that the line a decoding error names is the right one."""

    def __init__(self, binary: BinaryIO):
        self._binary = binary
        self.number = 0  # of the last line handed out
        self.bytes_since_mark = 0

    def __iter__(self) -> Iterator[str]:
        # A generator, not __next__: csv.reader pulls every line through it.
        readline, limit, bom = self._binary.readline, MAX_ROW_BYTES + 3, codecs.BOM_UTF8
        while raw := readline(limit):
            self.number += 1
            if self.number == 1 and raw.startswith(bom):
                raw = raw[len(bom) :]
            # readline's limit means a longer line arrives cut, without its line ending.
            if len(raw) > MAX_ROW_BYTES and len(raw.rstrip(b"\r\n")) > MAX_ROW_BYTES:
                raise FileRefused(f"line {self.number} is longer than {MAX_ROW_BYTES // 1024} KB")
            if b"\x00" in raw:
                raise FileRefused(f"line {self.number} contains a NUL byte: the file looks binary, not like CSV text")
            try:
                line = raw.decode()
            except UnicodeDecodeError as error:
                raise FileRefused(
                    f"line {self.number} is not UTF-8 text (byte 0x{raw[error.start]:02x}); "
                    "save the file as UTF-8 CSV (\"CSV UTF-8\" in spreadsheets)"
                ) from None
            self.bytes_since_mark += len(raw)
            yield line


class CsvImportFile:
    """A subscriber CSV, header read and checked on construction (FileRefused when unusable)."""

    def __init__(self, binary: BinaryIO):
        if not hasattr(binary, "peek"):
            binary = io.BufferedReader(binary)  # type: ignore[arg-type]
        _refuse_binary_start(binary.peek(4096)[:4096])  # type: ignore[attr-defined]
        self._lines = _Lines(binary)
        self._line_iterator = iter(self._lines)
        first = next((line for line in self._line_iterator if line.strip()), None)
        if first is None:
            raise FileRefused("the file is empty")
        # The header's line is already read: its record starts there, every later one on the next line.
        self._next_start = self._lines.number
        self.delimiter = sniff_delimiter(first)
        self._records = csv.reader(self._records_after(first), delimiter=self.delimiter)
        header = self._next_record()
        if header is None:
            raise FileRefused("the file is empty")
        self.columns = map_header(header[1])
        self._json_names = [(index, _json_string(name)) for index, name in self.columns.attributes]

    def _records_after(self, first: str) -> Iterator[str]:
        yield first
        yield from self._line_iterator

    def _next_record(self) -> tuple[int, list[str]] | None:
        """The next record and the line it starts on; None at the end."""
        start = self._next_start
        self._lines.bytes_since_mark = 0
        try:
            record = next(self._records)
        except StopIteration:
            return None
        except csv.Error as error:
            raise FileRefused(f"line {start}: {error}") from None
        # csv reads a record's lines and no further: the next record starts on the next line.
        self._next_start = self._lines.number + 1
        if self._lines.bytes_since_mark > MAX_ROW_BYTES + 2:
            raise FileRefused(f"the row starting on line {start} is longer than {MAX_ROW_BYTES // 1024} KB")
        return start, record

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[Chunk]:
        """The data rows, `size` at a time; may raise FileRefused part-way (the caller then keeps nothing)."""
        seen = SeenAddresses()
        chunk = Chunk()
        while (numbered := self._next_record()) is not None:
            line, record = numbered
            if not "".join(record).strip():
                continue  # blank line (every field empty or white space)
            chunk.processed += 1
            try:
                row = self.row(line, record)
            except InvalidInput as error:
                chunk.errors.append(RowError(line, error.detail))
            else:
                (chunk.repeats if seen.add(row[1]) else chunk.rows).append(row)
            if chunk.processed >= size:
                yield chunk
                chunk = Chunk()
        if chunk.processed or chunk.errors:
            yield chunk

    def row(self, line: int, record: list[str]) -> ImportRow:
        columns = self.columns
        width = len(record)
        if width < columns.count:
            record = record + [""] * (columns.count - width)  # trailing empty fields left out
        elif width > columns.count and any(value.strip() for value in record[columns.count :]):
            raise InvalidInput(f"the row has {width} fields, the header has {columns.count}")
        email = normalise_address(record[columns.email])
        first_name = None if columns.first_name is None else _name(record[columns.first_name], "first_name")
        last_name = None if columns.last_name is None else _name(record[columns.last_name], "last_name")
        status = "subscribed"
        if columns.status is not None and (raw := record[columns.status].strip()):
            status = raw.lower()
            if status not in SUBSCRIBER_STATUSES:
                raise InvalidInput(f"status must be one of {', '.join(SUBSCRIBER_STATUSES)}, got '{raw[:50]}'")
        # JSON built from pre-encoded names and C-encoded values: json.dumps costs more than the rest
        # of the row together.
        pairs = [f"{name}:{_json_string(unneutralise(record[i]))}" for i, name in self._json_names if record[i] != ""]
        encoded = "{" + ",".join(pairs) + "}" if pairs else None
        if encoded is not None and len(encoded) > MAX_ATTRIBUTES_BYTES // 4 and len(encoded.encode()) > MAX_ATTRIBUTES_BYTES:
            raise InvalidInput(f"attributes must be at most {MAX_ATTRIBUTES_BYTES // 1024} KiB of JSON")
        return (line, email, first_name, last_name, status, encoded)


_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _name(value: str, field_name: str) -> str | None:
    if not value:
        return None
    return clean_person_name(unneutralise(value) if value[0] == "'" else value, field_name)
