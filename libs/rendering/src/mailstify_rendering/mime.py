"""The wire form of a campaign email: multipart/alternative (text + HTML), UTF-8, each part 7bit
when it can be (ASCII, short lines, no trailing whitespace) and quoted-printable otherwise,
with the headers bulk mail is expected to carry: a deterministic Message-ID, Date, List-Unsubscribe
(https, plus mailto when configured) with One-Click (RFC 8058), List-Id (RFC 2919), Precedence: bulk,
Feedback-ID, Reply-To when set. DKIM signing is the mailer's (it alone holds the key): this is the
message before its signature.

Building a message with Python's `email` package costs about four times the SMTP send itself
(MACHINE-NOTES.md), so the hot path is `MimeSkeleton`: every byte that is the same for all recipients
of a campaign is encoded once, and each message is joined from those bytes plus the few per-recipient
headers and the two encoded bodies. `build_reference_message` builds the same message with the email
package; a unit test keeps the two equivalent once parsed.
"""

from __future__ import annotations

import binascii
import functools
import re
import secrets
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from urllib.parse import quote

from mailstify_contracts import CampaignContent

CRLF = b"\r\n"
# Recommended line length (RFC 5322 §2.1.1); the hard limit is 998.
_MAX_LINE = 78
_HARD_LIMIT = 998
# Longest encoded word we emit is "=?utf-8?b?" + 56 base64 chars + "?=" = 68 chars, which keeps
# "Subject: " + one word within 78. 42 bytes of UTF-8 encode to exactly 56 base64 chars.
_ENCODED_WORD_BYTES = 42
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+( [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
# An ASCII address without anything that could break out of its header or SMTP command.
_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@\x00-\x1f\x7f]+@[^\s<>()\[\]\\,;:\"@\x00-\x1f\x7f]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
# The sender id closing a Feedback-ID: ":" separates its fields, and it must stay one header token.
_FEEDBACK_SENDER = re.compile(r"[A-Za-z0-9._-]+")
# Characters `quote(value, safe="")` leaves as they are, less the dot (escaped for the dot-atom).
_UNRESERVED_ID = re.compile(r"[A-Za-z0-9_~-]+")


class UnsupportedAddress(ValueError):
    """An address the fast path will not put on the wire (non-ASCII or malformed)."""


@dataclass(frozen=True)
class HeaderOptions:
    """The headers an operator configures for every campaign message (the mailer's settings); the
    defaults are what a campaign preview shows."""

    # An address that takes unsubscribe requests by mail, offered beside the https link.
    unsubscribe_mailto: str | None = None
    # The last field of Feedback-ID (Gmail's SenderId): the same for all mail of this platform.
    feedback_id_sender: str = "mailstify"

    def __post_init__(self) -> None:
        if self.unsubscribe_mailto is not None:
            checked_address(self.unsubscribe_mailto)
        if not _FEEDBACK_SENDER.fullmatch(self.feedback_id_sender):
            raise ValueError(
                f"feedback id sender {self.feedback_id_sender!r} must be letters, digits, '.', '_' or '-'"
            )


DEFAULT_HEADER_OPTIONS = HeaderOptions()


@dataclass(frozen=True)
class MessageFields:
    """Everything that differs between two recipients of one campaign (and the campaign's id: test
    sends build a campaign's message from content of their own)."""

    campaign_id: str
    to_email: str
    to_name: str
    subject: str
    message_id: str
    date: str
    unsubscribe_url: str
    text: str
    html: str


def message_id(campaign_id: str, subscriber_id: str, from_email: str) -> str:
    """Deterministic per (campaign, subscriber): the same delivery always carries the same id.

    Ids are percent-escaped (dots too) so that any id yields a valid dot-atom and the mapping stays
    one-to-one; typical ids (digits, UUIDs) come through unchanged.
    """
    left = f"{_id_atom(campaign_id)}.{_id_atom(subscriber_id)}"
    return f"<{left}@{_sender_domain(from_email)}>"


def _id_atom(value: str) -> str:
    if _UNRESERVED_ID.fullmatch(value):  # digits, UUIDs: what `quote` would return, ~5x faster
        return value
    return quote(value, safe="").replace(".", "%2E") or "%00"


@functools.lru_cache(maxsize=256)  # one sender per campaign, asked once per message otherwise
def _sender_domain(from_email: str) -> str:
    domain = from_email.rpartition("@")[2]
    try:
        return domain.encode("idna").decode("ascii") or "mailstify.invalid"
    except UnicodeError:
        return "mailstify.invalid"


def list_id(list_or_campaign_id: str, from_email: str) -> str:
    """RFC 2919: a label unique to the list under a domain of the sender's. Content stored before it
    carried the list id is labelled by its campaign instead."""
    return f"<{_id_atom(list_or_campaign_id)}.{_sender_domain(from_email)}>"


def feedback_id(campaign_id: str, list_or_campaign_id: str, sender: str) -> str:
    """Gmail's Feedback-ID `a:b:SenderId`: complaint rates per campaign and per list."""
    return f"{_id_atom(campaign_id)}:{_id_atom(list_or_campaign_id)}:{sender}"


def list_unsubscribe(unsubscribe_url: str, mailto: str | None) -> str:
    """The https link first (the one RFC 8058's one-click POST goes to); the mailto's subject carries
    the link's token, so whoever handles that mailbox knows who to unsubscribe."""
    if mailto is None:
        return f"<{unsubscribe_url}>"
    token = quote(unsubscribe_url.rstrip("/").rpartition("/")[2], safe="")
    return f"<{unsubscribe_url}>,\r\n <mailto:{mailto}?subject=unsubscribe%20{token}>"


def recipient_name(first_name: str | None, last_name: str | None) -> str:
    return " ".join(part.strip() for part in (first_name, last_name) if part and part.strip())


class MimeSkeleton:
    """The campaign-constant bytes of a message, encoded once; `build` fills in one recipient."""

    def __init__(
        self,
        content: CampaignContent,
        boundary: str | None = None,
        options: HeaderOptions = DEFAULT_HEADER_OPTIONS,
    ):
        self._content = content
        self._options = options
        # "=_" cannot occur in quoted-printable output ("=" is always followed by hex digits or a
        # line break), and a 7bit part is checked not to hold it, so the boundary never collides
        # with a part's content.
        self.boundary = boundary or f"=_mailstify_{secrets.token_hex(12)}"
        self._boundary_bytes = self.boundary.encode()
        from_header = _header("From", format_address(content.from_name, checked_address(content.from_email)))
        reply_to = (
            _header("Reply-To", format_address("", checked_address(content.reply_to))) if content.reply_to else b""
        )
        boundary_line = f"--{self.boundary}".encode()
        self._static_headers = (
            from_header
            + reply_to
            + b"MIME-Version: 1.0\r\n"
            + b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            + b"Precedence: bulk\r\n"
            + f'Content-Type: multipart/alternative;\r\n boundary="{self.boundary}"\r\n'.encode()
            + CRLF
        )
        # Each part's content ends with CRLF, and the delimiter is itself preceded by CRLF.
        self._text_heads = {
            cte: boundary_line + b'\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: '
            + cte + b"\r\n\r\n"
            for cte in TRANSFER_ENCODINGS
        }
        self._html_heads = {
            cte: CRLF + boundary_line + b'\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: '
            + cte + b"\r\n\r\n"
            for cte in TRANSFER_ENCODINGS
        }
        self._closing = CRLF + boundary_line + b"--\r\n"
        # A skeleton serves one campaign in practice: its list headers are encoded once, not per message.
        self._campaign_headers: tuple[str, bytes] = ("", b"")

    def build(self, fields: MessageFields) -> bytes:
        text_encoding, text = encoded_part(fields.text, self._boundary_bytes)
        html_encoding, html = encoded_part(fields.html, self._boundary_bytes)
        return b"".join(
            (
                _header("To", format_address(fields.to_name, checked_address(fields.to_email))),
                _unstructured("Subject", fields.subject),
                _header("Date", fields.date),
                _header("Message-ID", fields.message_id),
                _header("List-Unsubscribe", list_unsubscribe(fields.unsubscribe_url, self._options.unsubscribe_mailto)),
                self._list_headers(fields.campaign_id),
                self._static_headers,
                self._text_heads[text_encoding],
                text,
                self._html_heads[html_encoding],
                html,
                self._closing,
            )
        )

    def _list_headers(self, campaign_id: str) -> bytes:
        cached_for, encoded = self._campaign_headers
        if cached_for != campaign_id or not encoded:
            label = self._content.list_id or campaign_id
            encoded = _header("List-Id", list_id(label, self._content.from_email)) + _header(
                "Feedback-ID", feedback_id(campaign_id, label, self._options.feedback_id_sender)
            )
            self._campaign_headers = (campaign_id, encoded)
        return encoded


def build_reference_message(
    content: CampaignContent, fields: MessageFields, options: HeaderOptions = DEFAULT_HEADER_OPTIONS
) -> EmailMessage:
    """The same message built with the email package: slow, obviously right; the fast path's oracle."""
    message = EmailMessage()
    message["From"] = Address(content.from_name, addr_spec=content.from_email)
    message["To"] = Address(fields.to_name, addr_spec=fields.to_email)
    message["Subject"] = fields.subject
    message["Date"] = fields.date
    message["Message-ID"] = fields.message_id
    if content.reply_to:
        message["Reply-To"] = Address(addr_spec=content.reply_to)
    links = [f"<{fields.unsubscribe_url}>"]
    if options.unsubscribe_mailto:
        token = fields.unsubscribe_url.rpartition("/")[2]
        links.append(f"<mailto:{options.unsubscribe_mailto}?subject=unsubscribe%20{token}>")
    message["List-Unsubscribe"] = ", ".join(links)
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    label = content.list_id or fields.campaign_id
    message["List-Id"] = list_id(label, content.from_email)
    message["Feedback-ID"] = feedback_id(fields.campaign_id, label, options.feedback_id_sender)
    message["Precedence"] = "bulk"
    # The encoding the fast path chose (7bit or quoted-printable): what is compared is the content.
    message.set_content(fields.text, cte=_chosen_encoding(fields.text))
    message.add_alternative(fields.html, subtype="html", cte=_chosen_encoding(fields.html))
    return message


def _chosen_encoding(text: str) -> str:
    return encoded_part(text, b"=_")[0].decode()


def wire_body(text: str) -> bytes:
    """A part's content as it goes on the wire before transfer encoding, i.e. what a reader decodes:
    UTF-8, the same line normalisation as the email package (bytes.splitlines, CRLF, trailing line
    break). Previews serve exactly these bytes."""
    return _wire_lines(text)[1]


def _wire_lines(text: str) -> tuple[list[bytes], bytes]:
    """`wire_body`, and its lines without their line breaks."""
    lines = text.encode("utf-8").splitlines()
    return lines, CRLF.join(lines) + CRLF


SEVEN_BIT = b"7bit"
QUOTED_PRINTABLE = b"quoted-printable"
TRANSFER_ENCODINGS = (SEVEN_BIT, QUOTED_PRINTABLE)


def encoded_part(text: str, boundary: bytes) -> tuple[bytes, bytes]:
    """A part's Content-Transfer-Encoding and its content on the wire: as it is (7bit) when it is
    ASCII, no line is longer than RFC 5322's 998, none ends in whitespace (a relay may strip that,
    which would break a DKIM signature of the body) and the multipart boundary does not occur in it;
    quoted-printable otherwise (with CRLF input, binascii uses CRLF for its soft line breaks too,
    and "=_" never occurs in its output). Most
    campaign HTML is the first, and checking costs a third of encoding (~20 µs against ~60 µs for
    8 KB, 5% of a mailer's CPU). A search for a pattern that is absent scans the whole part at
    ~0.7 ns a byte, a single byte is found by memchr ten times faster: a tab, or the boundary's first
    byte, that is not there at all spares the search for the pattern it starts."""
    lines, data = _wire_lines(text)
    if (
        data.isascii()
        and b" \r\n" not in data
        and (b"\t" not in data or b"\t\r\n" not in data)
        and max(map(len, lines), default=0) <= _HARD_LIMIT
        and (boundary[:1] not in data or boundary not in data)
    ):
        return SEVEN_BIT, data
    return QUOTED_PRINTABLE, binascii.b2a_qp(data, istext=True)


def checked_address(address: str) -> str:
    if not (address.isascii() and _PLAIN_ADDRESS.fullmatch(address)):
        raise UnsupportedAddress(f"cannot send to {address!r}: only plain ASCII addresses are supported")
    return address


def format_address(name: str, address: str) -> str:
    if not name:
        return address
    return f"{format_phrase(name)} <{address}>"


def format_phrase(name: str) -> str:
    """A display name as atoms, a quoted string, or RFC 2047 encoded words (non-ASCII)."""
    if name.isascii() and _PRINTABLE_ASCII.fullmatch(name) and "=?" not in name:
        if _ATOM_PHRASE.fullmatch(name):
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encoded_words(name)


def encoded_words(value: str) -> str:
    """Base64 RFC 2047 words of at most 42 UTF-8 bytes, split between characters (a decoder joins
    adjacent words, and ignores the folding whitespace between them)."""
    words: list[str] = []
    chunk: list[bytes] = []
    size = 0
    for char in value:
        encoded = char.encode("utf-8")
        if size + len(encoded) > _ENCODED_WORD_BYTES:
            words.append(_encoded_word(b"".join(chunk)))
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    if chunk:
        words.append(_encoded_word(b"".join(chunk)))
    return "\r\n ".join(words)


def _encoded_word(data: bytes) -> str:
    return f"=?utf-8?b?{binascii.b2a_base64(data, newline=False).decode('ascii')}?="


def _header(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode("ascii")


def _unstructured(name: str, value: str) -> bytes:
    """An unstructured header (Subject): plain when printable ASCII, folded at spaces to 78
    characters; otherwise, or when a word would exceed the hard line limit, encoded words."""
    if value.isascii() and _PRINTABLE_ASCII.fullmatch(value) and "=?" not in value:
        folded = _fold_at_spaces(f"{name}: {value}")
        if folded is not None:
            return folded.encode("ascii") + CRLF
    return _header(name, encoded_words(value))


def _fold_at_spaces(line: str) -> str | None:
    """Fold by inserting CRLF before a space (unfolding removes only the CRLF, so the value is
    unchanged). None when a single word would not fit under the hard limit."""
    if len(line) <= _MAX_LINE:
        return line
    lines: list[str] = []
    current = ""
    for index, word in enumerate(line.split(" ")):
        piece = word if index == 0 else " " + word
        if current.strip() and len(current) + len(piece) > _MAX_LINE:
            lines.append(current)
            current = piece
        else:
            current += piece
    lines.append(current)
    if any(len(part) > _HARD_LIMIT for part in lines):
        return None
    return "\r\n".join(lines)
