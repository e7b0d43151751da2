"""The development SMTP inbox: captures every email sent to it and shows it over HTTP.

    python -m mailstify_devstack.inbox --smtp-port 1025 --http-port 8025 --dir .mailstify/inbox

HTTP API (what `InboxClient` reads; the tests and a developer's browser use the same one):

    GET    /                          a page listing the messages, newest first
    GET    /healthz, /readyz          200 once it serves
    GET    /api/messages              JSON list, oldest first: {id, mail_from, rcpt_tos, subject,
                                      message_id, to, from, date, text, html, raw_size, received_at}
    GET    /api/messages/{id}         one of those
    GET    /api/messages/{id}/raw     the raw RFC 5322 bytes as received
    GET    /api/messages/{id}/html    the HTML part, sandboxed (its scripts do not run)
    DELETE /api/messages              deletes every message

Messages are files in a Maildir (the SMTP envelope in a JSON file beside it), so they survive restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import email
import email.policy
import html
import json
import logging
import mailbox
import signal
import sys
import threading
import time
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from .net import LOOPBACK, is_listening, wait_until
from .processes import ProcessSpec, RunningProcess

log = logging.getLogger("mailstify.inbox")

Summary = dict[str, Any]


# --- storage -------------------------------------------------------------------------------------


_HEADERS = BytesHeaderParser(policy=email.policy.default)
_STRUCTURE = BytesParser(policy=email.policy.compat32)


def summarize(message_id: str, raw: bytes, mail_from: str, rcpt_tos: list[str], received_at: str) -> Summary:
    # Headers decoded by the modern policy (encoded words, address formatting), bodies found and
    # decoded by hand over the legacy parse: parsing whole messages with policy.default cost 3.2 ms
    # each, the inbox's own CPU on every mail of every e2e test; this costs about 0.5 ms.
    headers = _HEADERS.parsebytes(raw)
    bodies = _bodies(_STRUCTURE.parsebytes(raw))
    return {
        "id": message_id,
        "mail_from": mail_from,
        "rcpt_tos": rcpt_tos,
        "subject": str(headers.get("subject", "")),
        "message_id": str(headers.get("message-id", "")),
        "to": str(headers.get("to", "")),
        "from": str(headers.get("from", "")),
        "date": str(headers.get("date", "")),
        "text": bodies.get("plain", ""),
        "html": bodies.get("html", ""),
        "raw_size": len(raw),
        "received_at": received_at,
    }


def _bodies(message: Message) -> dict[str, str]:
    """The first text/plain and text/html parts that are not attachments, decoded (what
    EmailMessage.get_body finds in a campaign's multipart/alternative), by subtype."""
    found: dict[str, str] = {}
    for part in message.walk():
        subtype = part.get_content_subtype()
        if part.get_content_maintype() != "text" or subtype not in ("plain", "html") or subtype in found:
            continue
        if (part.get("content-disposition") or "").strip().lower().startswith("attachment"):
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        try:
            text = content.decode(part.get_content_charset() or "us-ascii")
        except (LookupError, UnicodeError):  # unknown or lying charset: show what we can
            text = content.decode("utf-8", "replace")
        found[subtype] = text.replace("\r\n", "\n")  # CRLF is the wire format, not part of the text
    return found


class Mailbox:
    """Captured messages. Parsed summaries are kept in memory, in arrival order, because the tests poll
    the list many times a second."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(directory / "maildir", create=True)
        self._envelopes = directory / "envelopes"
        self._envelopes.mkdir(exist_ok=True)
        self._lock = threading.Lock()  # SMTP and HTTP run on different threads
        self._summaries: dict[str, Summary] = {}
        # Recipients the inbox refuses, with the reply it gives at RCPT TO (like Mailpit's "chaos"):
        # how a developer, or a test, sees what a real server's 550 or 451 does to a campaign.
        self._rejections: dict[str, str] = {}
        self._load()

    def reject(self, address: str, reply: str) -> None:
        with self._lock:
            self._rejections[address.lower()] = reply

    def accept(self, address: str) -> None:
        with self._lock:
            self._rejections.pop(address.lower(), None)

    def rejection_for(self, address: str) -> str | None:
        with self._lock:
            return self._rejections.get(address.lower())

    def add(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> Summary:
        received_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        envelope = {"mail_from": mail_from, "rcpt_tos": rcpt_tos, "received_at": received_at}
        with self._lock:
            key = self._maildir.add(raw)
            (self._envelopes / f"{key}.json").write_text(json.dumps(envelope))
            summary = self._summaries[key] = summarize(key, raw, mail_from, rcpt_tos, received_at)
        return summary

    def summaries(self) -> list[Summary]:
        with self._lock:
            return list(self._summaries.values())

    def get(self, key: str) -> Summary | None:
        with self._lock:
            return self._summaries.get(key)

    def raw(self, key: str) -> bytes | None:
        with self._lock:
            return self._maildir.get_bytes(key) if key in self._summaries else None

    def clear(self) -> None:
        with self._lock:
            for key in list(self._summaries):
                self._maildir.discard(key)
                (self._envelopes / f"{key}.json").unlink(missing_ok=True)
            self._summaries.clear()

    def _load(self) -> None:
        loaded = []
        for key in self._maildir.iterkeys():
            try:
                envelope = json.loads((self._envelopes / f"{key}.json").read_text())
            except FileNotFoundError:  # dropped into the Maildir by something else
                envelope = {"mail_from": "", "rcpt_tos": [], "received_at": ""}
            loaded.append(summarize(key, self._maildir.get_bytes(key), **envelope))
        for summary in sorted(loaded, key=lambda s: s["received_at"]):
            self._summaries[summary["id"]] = summary


# --- SMTP ----------------------------------------------------------------------------------------


class AdvertisesPipelining:
    """An aiosmtpd handler mixin: EHLO offers PIPELINING (RFC 2920), as Postfix and most relays do.
    aiosmtpd reads commands one line at a time, so it serves a pipelined group as it is; it only
    does not say so, and the mailer pipelines only where the server says so."""

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:  # fmt: skip
        session.host_name = hostname  # what aiosmtpd does itself when no hook is set
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class _CaptureHandler(AdvertisesPipelining):
    """aiosmtpd handler: accept every message for every recipient and keep it."""

    def __init__(self, mailbox: Mailbox):
        self._mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        rejection = self._mailbox.rejection_for(address)
        if rejection is not None:
            return rejection
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        summary = self._mailbox.add(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        log.info("captured %r from %s to %s", summary["subject"], summary["mail_from"], ", ".join(summary["rcpt_tos"]))
        return "250 Message accepted for delivery"


# --- HTTP ----------------------------------------------------------------------------------------


class _InboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], mailbox: Mailbox):
        super().__init__(address, _RequestHandler)
        self.mailbox = mailbox


class _RequestHandler(BaseHTTPRequestHandler):
    server: _InboxHTTPServer

    def do_GET(self) -> None:
        mailbox = self.server.mailbox
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        match parts:
            case [""]:
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", render_page(mailbox.summaries()).encode())
            case ["healthz"] | ["readyz"]:  # the same probes as the services, so one readiness check fits all
                self._send(HTTPStatus.OK, "text/plain", b"ok\n")
            case ["api", "messages"]:
                self._send_json(mailbox.summaries())
            case ["api", "messages", key] if (summary := mailbox.get(key)) is not None:
                self._send_json(summary)
            case ["api", "messages", key, "raw"] if (raw := mailbox.raw(key)) is not None:
                self._send(HTTPStatus.OK, "text/plain", raw)
            case ["api", "messages", key, "html"] if (summary := mailbox.get(key)) is not None:
                # The sandbox keeps an email's scripts and forms from running as this page's origin.
                headers = {"Content-Security-Policy": "sandbox"}
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", summary["html"].encode(), headers)
            case _:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_DELETE(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        match parts:
            case ["api", "messages"]:
                self.server.mailbox.clear()
            case ["api", "rejections", address]:
                self.server.mailbox.accept(unquote(address))
            case _:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
                return
        self._send(HTTPStatus.NO_CONTENT, "text/plain", b"")

    def do_PUT(self) -> None:
        """PUT /api/rejections/<address> with the SMTP reply as the body, e.g. `550 5.7.1 refused`."""
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        length = int(self.headers.get("content-length") or 0)
        reply = self.rfile.read(length).decode("utf-8", "replace").strip()
        if len(parts) != 3 or parts[:2] != ["api", "rejections"] or not reply[:3].isdigit() or reply[0] not in "45":
            self._send(HTTPStatus.BAD_REQUEST, "text/plain", b"PUT /api/rejections/<address> with a 4xx or 5xx reply\n")
            return
        self.server.mailbox.reject(unquote(parts[2]), reply)
        self._send(HTTPStatus.NO_CONTENT, "text/plain", b"")

    def _send_json(self, body: object) -> None:
        self._send(HTTPStatus.OK, "application/json", json.dumps(body).encode())

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests poll many times a second; one line per request would drown the stack's log


def render_page(summaries: list[Summary]) -> str:
    rows = "\n".join(_render_row(summary) for summary in reversed(summaries)) or (
        '<tr><td colspan="5" class="empty">No email yet. Whatever is sent to this SMTP server shows up here.</td></tr>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mailstify dev inbox ({len(summaries)})</title>
<style>
 body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }}
 table {{ border-collapse: collapse; width: 100%; }}
 th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
 th {{ background: #f4f4f4; }} .empty {{ color: #777; padding: 2rem; text-align: center; }}
 pre {{ white-space: pre-wrap; background: #fafafa; padding: .6rem; border: 1px solid #eee; }}
 summary {{ cursor: pointer; font-weight: 600; }} small {{ color: #777; }}
</style></head>
<body>
<h1>Mailstify dev inbox</h1>
<p>{len(summaries)} message(s), newest first. <a href="/">Refresh</a> ·
 <button onclick="fetch('/api/messages', {{method: 'DELETE'}}).then(() => location.reload())">Delete all</button>
 · JSON: <a href="/api/messages">/api/messages</a></p>
<table><thead><tr><th>Received</th><th>From</th><th>To</th><th>Message</th><th></th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def _render_row(summary: Summary) -> str:
    key = html.escape(summary["id"], quote=True)
    links = [f'<a href="/api/messages/{key}/raw">raw</a>']
    if summary["html"]:
        links.insert(0, f'<a href="/api/messages/{key}/html" target="_blank">HTML</a>')
    return (
        f"<tr><td><small>{html.escape(summary['received_at'])}</small></td>"
        f"<td>{html.escape(summary['from'] or summary['mail_from'])}</td>"
        f"<td>{html.escape(', '.join(summary['rcpt_tos']))}</td>"
        f"<td><details><summary>{html.escape(summary['subject'] or '(no subject)')}</summary>"
        f"<pre>{html.escape(summary['text'] or '(no text part)')}</pre></details></td>"
        f"<td>{' · '.join(links)}</td></tr>"
    )


# --- the process ---------------------------------------------------------------------------------


async def serve(directory: Path, smtp_port: int, http_port: int, host: str = LOOPBACK) -> None:
    """Run until SIGTERM or SIGINT."""
    mailbox = Mailbox(directory)
    loop = asyncio.get_running_loop()
    http_server = _InboxHTTPServer((host, http_port), mailbox)
    threading.Thread(target=http_server.serve_forever, name="inbox-http", daemon=True).start()
    # An explicit hostname: the default looks up this machine's FQDN, which can hang on DNS.
    smtp_server = await loop.create_server(
        lambda: SMTP(_CaptureHandler(mailbox), hostname="mailstify-inbox", enable_SMTPUTF8=True, loop=loop),
        host=host,
        port=smtp_port,
    )
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    kept = len(mailbox.summaries())
    log.info("dev inbox: SMTP %s:%d, web http://%s:%d (%d message(s) kept)", host, smtp_port, host, http_port, kept)
    try:
        await stopping.wait()
    finally:
        smtp_server.close()
        http_server.shutdown()
        http_server.server_close()


def inbox_argv(directory: Path, smtp_port: int, http_port: int) -> list[str]:
    return [
        sys.executable, "-m", "mailstify_devstack.inbox",
        "--smtp-port", str(smtp_port),
        "--http-port", str(http_port),
        "--dir", str(directory),
    ]  # fmt: skip


def process_spec(directory: Path, smtp_port: int, http_port: int) -> ProcessSpec:
    return ProcessSpec("inbox", inbox_argv(directory, smtp_port, http_port))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mailstify-inbox", description="Development SMTP inbox.")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".mailstify/inbox"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    asyncio.run(serve(args.dir, args.smtp_port, args.http_port))


# --- client --------------------------------------------------------------------------------------


class InboxClient:
    """Reads a dev inbox (or anything adapted to its API) over HTTP; also knows its SMTP address."""

    def __init__(self, http_url: str, *, smtp_host: str = LOOPBACK, smtp_port: int | None = None):
        self.http_url = http_url.rstrip("/")
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port

    def messages(self) -> list[Summary]:
        """Every captured message, oldest first."""
        return self._request("GET", "/api/messages").json()

    def raw(self, message_id: str) -> bytes:
        return self._request("GET", f"/api/messages/{message_id}/raw").content

    def clear(self) -> None:
        self._request("DELETE", "/api/messages")

    def reject(self, address: str, reply: str) -> None:
        """Answer `reply` (4xx or 5xx) to RCPT TO `address` until `accept`."""
        self._request("PUT", f"/api/rejections/{quote(address, safe='')}", content=reply.encode())

    def accept(self, address: str) -> None:
        self._request("DELETE", f"/api/rejections/{quote(address, safe='')}")

    def wait_for(self, count: int, timeout: float = 10.0, interval: float = 0.1) -> list[Summary]:
        """Poll until at least `count` messages are there; returns them all. TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while len(found := self.messages()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} message(s) in the inbox within {timeout} s, found {len(found)}")
            time.sleep(interval)
        return found

    def is_up(self) -> bool:
        try:
            self.messages()
        except httpx.HTTPError:
            return False
        return self.smtp_port is None or is_listening(self.smtp_host, self.smtp_port)

    def _request(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        response = httpx.request(method, self.http_url + path, content=content, timeout=10.0)
        response.raise_for_status()
        return response


@contextlib.contextmanager
def running(
    directory: Path, log_path: Path, smtp_port: int, http_port: int, timeout: float = 15.0
) -> Iterator[InboxClient]:
    """The inbox as a separate process (the same one `mailstify up` runs), stopped on exit."""
    with RunningProcess.start(process_spec(directory, smtp_port, http_port), log_path) as process:
        client = InboxClient(f"http://{LOOPBACK}:{http_port}", smtp_port=smtp_port)
        wait_until(client.is_up, timeout=timeout, what="dev inbox", still_alive=process.alive)
        yield client


if __name__ == "__main__":
    main()
