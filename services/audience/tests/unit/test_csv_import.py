"""Reading subscriber CSVs: encodings, delimiters, quoting, header mapping, row errors by line, and
the files refused as a whole."""

from __future__ import annotations

import io

import pytest

from audience.domain.csv_import import MAX_ROW_BYTES, CsvImportFile, FileRefused, sniff_delimiter, unneutralise


def read(content: bytes, chunk: int = 1000) -> tuple[CsvImportFile, list, list, int]:
    csv_file = CsvImportFile(io.BytesIO(content))
    rows, errors, processed = [], [], 0
    for piece in csv_file.chunks(chunk):
        rows += piece.rows
        errors += [(e.line, e.reason) for e in piece.errors]
        processed += piece.processed
    return csv_file, rows, errors, processed


def refusal(content: bytes) -> str:
    with pytest.raises(FileRefused) as refused:
        read(content)
    return refused.value.detail


def test_a_plain_file_becomes_normalised_rows_numbered_by_line() -> None:
    _, rows, errors, processed = read(b"email,first_name,last_name\n Ann@Example.COM ,Ann,Lee\nbob@example.com,,\n")
    assert rows == [
        (2, "ann@example.com", "Ann", "Lee", "subscribed", None),
        (3, "bob@example.com", None, None, "subscribed", None),
    ]
    assert (errors, processed) == ([], 2)


def test_bom_semicolons_and_quoted_fields_with_delimiters_and_newlines() -> None:
    content = '\ufeffE-Mail;First Name;Surname\r\n"a@example.com";"Smith; Jr.";"two\r\nlines"\r\nb@example.com;"say ""hi""";\r\n'
    csv_file, rows, errors, _ = read(content.encode())
    assert csv_file.delimiter == ";" and errors == []
    assert rows[0][1:4] == ("a@example.com", "Smith; Jr.", "two\r\nlines")
    # The record after a two-line field starts on line 4.
    assert rows[1][:3] == (4, "b@example.com", 'say "hi"')


@pytest.mark.parametrize(
    "header, delimiter", [("email,name", ","), ("email;name", ";"), ('"a;b",email', ","), ("email;a,b;c", ";"), ("email", ",")]
)
def test_the_delimiter_is_the_more_frequent_one_outside_quotes(header: str, delimiter: str) -> None:
    assert sniff_delimiter(header) == delimiter


def test_unknown_columns_become_attributes_and_blank_cells_are_left_out() -> None:
    csv_file, rows, _, _ = read(b"Plan,EMAIL,City,created_at,\npro,a@example.com,,2020-01-01,x\n")
    assert [name for _, name in csv_file.columns.attributes] == ["Plan", "City"]
    assert rows[0][5] == '{"Plan":"pro"}'


def test_each_bad_row_is_reported_with_its_line_and_the_others_kept() -> None:
    content = (
        b"email,first_name,status\n"
        b"good@example.com,Good,\n"
        b"nope,Bad,\n"
        b"\n"
        b"long@example.com," + b"x" * 201 + b",\n"
        b"status@example.com,S,gone\n"
        b"extra@example.com,E,,surplus\n"
        b"trailing@example.com,T,,,\n"
        b"left@example.com,L,Unsubscribed\n"
    )
    _, rows, errors, processed = read(content)
    assert [row[1] for row in rows] == ["good@example.com", "trailing@example.com", "left@example.com"]
    assert rows[2][4] == "unsubscribed"
    assert [line for line, _ in errors] == [3, 5, 6, 7]
    assert "not a valid email address" in errors[0][1]
    assert "first_name must be at most 200" in errors[1][1]
    assert "status must be one of" in errors[2][1]
    assert "has 4 fields, the header has 3" in errors[3][1]
    assert processed == 7  # the blank line is not a row


def test_the_export_formula_guard_is_taken_off_again() -> None:
    _, rows, _, _ = read(b"email,first_name,note\na@example.com,'=SUM(A1),'@home\n")
    assert (rows[0][2], rows[0][5]) == ("=SUM(A1)", '{"note":"@home"}')
    assert unneutralise("'plain") == "'plain" and unneutralise("'") == "'"


def test_rows_come_in_chunks() -> None:
    content = b"email\n" + b"".join(b"p%d@example.com\n" % n for n in range(25))
    chunks = list(CsvImportFile(io.BytesIO(content)).chunks(10))
    assert [chunk.processed for chunk in chunks] == [10, 10, 5]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "the file is empty"),
        (b"\xef\xbb\xbf\r\n \r\n", "the file is empty"),
        (b"GIF89a\x01\x00\x00\x00", "looks binary"),
        (b"\xff\xfee\x00m\x00", "UTF-16"),
        (b"first_name,last_name\nAnn,Lee\n", "'email' column"),
        (b"email,Email\na@example.com,b@example.com\n", "two email columns"),
        (b"email,plan,plan\n", "'plan' twice"),
        (b"email,first_name\na@example.com,Ren\xe9\n", "line 2 is not UTF-8 text (byte 0xe9)"),
        (b"email\n" + b"a@example.com\n" * 400 + b"b@exa\x00mple.com\n", "line 402 contains a NUL byte"),
        (b"email\n" + b"a" * (MAX_ROW_BYTES + 1) + b"\n", "line 2 is longer than 64 KB"),
        (b"email\n" + b"a" * (10 * 1024 * 1024), "line 2 is longer than 64 KB"),
        (b'email,note\na@example.com,"' + (b"x" * 60_000 + b"\n") * 2 + b'"\n', "row starting on line 2 is longer"),
    ],
    ids=["empty", "only blank", "binary", "utf-16", "no email", "two emails", "duplicate column", "latin-1", "nul",
         "row over 64 KB", "10 MB line", "multi-line row over 64 KB"],
)  # fmt: skip
def test_files_that_cannot_be_read_are_refused_with_a_reason(content: bytes, reason: str) -> None:
    assert reason in refusal(content)


def test_a_row_of_exactly_64_kb_is_read_and_judged_by_its_fields() -> None:
    value = "x" * (MAX_ROW_BYTES - len("a@example.com,"))
    _, rows, errors, processed = read(f"email,note\na@example.com,{value}\r\n".encode())
    assert (rows, processed) == ([], 1)
    assert errors == [(2, "attributes must be at most 16 KiB of JSON")]


def test_a_repeated_address_is_held_apart_and_every_first_occurrence_is_a_row() -> None:
    lines = [f"person{n}@example.com,P{n}" for n in range(3000)]
    lines += ["Person7@Example.com,again", "person2999@example.com,again"]
    chunks = list(CsvImportFile(io.BytesIO(("email,first_name\n" + "\n".join(lines)).encode())).chunks(1000))
    rows = [row for chunk in chunks for row in chunk.rows]
    repeats = [row for chunk in chunks for row in chunk.repeats]
    # Never a false "new": both repeats (normalised to the same address) are held apart.
    assert [(line, email) for line, email, *_ in repeats if line > 3001] == [
        (3002, "person7@example.com"), (3003, "person2999@example.com")
    ]
    # Rarely a false "maybe seen" (then held too): every address still comes through exactly once.
    assert len(rows) + len(repeats) == 3002
    assert {row[1] for row in rows} | {row[1] for row in repeats} == {f"person{n}@example.com" for n in range(3000)}
