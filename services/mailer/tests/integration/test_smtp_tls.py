"""The SMTP pool against real aiosmtpd servers on loopback: STARTTLS and implicit TLS with a
self-signed certificate made here, AUTH LOGIN and PLAIN, a per-connection message cap, and sessions
the server drops."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as SmtpProtocol
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailstify_devstack.inbox import AdvertisesPipelining

from mailer.adapters.smtp_pool import SmtpPool
from mailer.config import Settings
from mailer.domain.model import SmtpAttempt, SmtpPhase
from mailer.service_layer.ports import OutgoingMail

pytestmark = pytest.mark.integration

USERNAME, PASSWORD = "mailer", "s3cret-pass"


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (its own CA: the client trusts exactly it)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailstify test relay")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate = Certificate(directory / "relay.crt", directory / "relay.key")
    certificate.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certificate.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate


@dataclass
class Received:
    peer: tuple[str, int]
    tls_version: str | None
    login: bytes | None
    mechanism: str | None
    content: bytes


@dataclass
class RecordingHandler(AdvertisesPipelining):
    """Accepts everything; records each message with its session (client port, TLS, login). Offers
    PIPELINING, so the mailer's pipelined transactions run over TLS here."""

    received: list[Received] = field(default_factory=list)
    # Per session (client address): the mechanism and login it authenticated with.
    logins: dict[tuple[str, int], tuple[str, bytes]] = field(default_factory=dict)
    # Close a session without a reply when it starts its (n+1)-th message: a server that dropped it.
    drop_after: int | None = None
    _messages_per_peer: dict[tuple[str, int], int] = field(default_factory=dict)

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins[session.peer] = (mechanism, auth_data.login)
        # handled=False: aiosmtpd itself answers a failure (535).
        return AuthResult(success=ok, handled=False)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.drop_after is not None and self._messages_per_peer.get(session.peer, 0) >= self.drop_after:
            server.transport.close()
            return "421 never seen: the session is gone"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self._messages_per_peer[session.peer] = self._messages_per_peer.get(session.peer, 0) + 1
        ssl_object = server.transport.get_extra_info("ssl_object")
        mechanism, login = self.logins.get(session.peer, (None, None))
        self.received.append(
            Received(session.peer, ssl_object.version() if ssl_object else None, login, mechanism, envelope.original_content)
        )
        return "250 2.0.0 queued"

    @property
    def sessions(self) -> list[int]:
        """Messages per session, in the order the sessions began."""
        counts: dict[tuple[str, int], int] = {}
        for message in self.received:
            counts[message.peer] = counts.get(message.peer, 0) + 1
        return list(counts.values())


Serve = Callable[..., Awaitable[tuple[RecordingHandler, int]]]


@pytest.fixture
async def smtp_server() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def serve(
        handler: RecordingHandler | None = None, implicit_tls: ssl.SSLContext | None = None, **options: object
    ) -> tuple[RecordingHandler, int]:
        handler = handler or RecordingHandler()
        if "auth_required" in options:
            options.setdefault("authenticator", handler.authenticate)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SmtpProtocol(handler, hostname="relay.test", **options), "127.0.0.1", 0, ssl=implicit_tls
        )
        servers.append(server)
        return handler, server.sockets[0].getsockname()[1]

    yield serve
    for server in servers:
        server.close()


def pool_for(port: int, **options: object) -> SmtpPool:
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=5.0,
        **{"smtp_pool_size": 1, **options},
    )
    return SmtpPool(settings)


def mails(count: int) -> list[OutgoingMail]:
    return [
        OutgoingMail(
            "news@acme.test",
            f"person{n}@example.com",
            f"From: news@acme.test\r\nTo: person{n}@example.com\r\nSubject: n{n}\r\n\r\n.dot-stuffed line {n}\r\n".encode(),
        )
        for n in range(count)
    ]


async def send(pool: SmtpPool, outgoing: list[OutgoingMail]) -> list[SmtpAttempt]:
    try:
        return await pool.send_all(outgoing, start_before=time.monotonic() + 60)
    finally:
        await pool.aclose()


def delivered(attempts: list[SmtpAttempt]) -> bool:
    return all(a.code == 250 and a.phase is SmtpPhase.DATA_SENT for a in attempts)


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
async def test_starttls_then_auth(smtp_server, certificate, mechanism):
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    handler, port = await smtp_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_exclude_mechanism=[other],
    )
    pool = pool_for(
        port, smtp_tls="starttls", smtp_ca_file=certificate.cert_file, smtp_username=USERNAME, smtp_password=PASSWORD
    )
    outgoing = mails(3)
    assert delivered(await send(pool, outgoing))
    assert [(r.login, r.mechanism) for r in handler.received] == [(USERNAME.encode(), mechanism)] * 3
    assert all(r.tls_version in ("TLSv1.2", "TLSv1.3") for r in handler.received)
    assert handler.sessions == [3]  # one session carries them all
    assert [r.content for r in handler.received] == [m.data for m in outgoing]


# aiosmtpd cannot tell an implicit-TLS session from a plain one, so AUTH must not "require TLS" here.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_then_auth(smtp_server, certificate):
    handler, port = await smtp_server(
        implicit_tls=certificate.server_context(), auth_required=True, auth_require_tls=False
    )
    pool = pool_for(
        port, smtp_tls="tls", smtp_ca_file=certificate.cert_file, smtp_username=USERNAME, smtp_password=PASSWORD
    )
    assert delivered(await send(pool, mails(2)))
    assert all(r.tls_version and r.login == USERNAME.encode() for r in handler.received)


async def test_a_wrong_password_is_a_session_refusal_not_the_recipients(smtp_server, certificate):
    handler, port = await smtp_server(tls_context=certificate.server_context(), require_starttls=True, auth_required=True)
    pool = pool_for(
        port, smtp_tls="starttls", smtp_ca_file=certificate.cert_file, smtp_username=USERNAME, smtp_password="wrong"
    )
    (attempt,) = await send(pool, mails(1))
    assert (attempt.code, attempt.phase) == (535, SmtpPhase.SESSION), attempt
    assert handler.received == []


async def test_a_certificate_not_trusted_is_never_sent_to(smtp_server, certificate):
    handler, port = await smtp_server(tls_context=certificate.server_context(), require_starttls=True)
    (attempt,) = await send(pool_for(port, smtp_tls="starttls"), mails(1))
    assert attempt.phase is SmtpPhase.SESSION and attempt.code is None
    assert "certificate" in attempt.reply.lower()
    assert handler.received == []


async def test_starttls_configured_but_not_offered_sends_nothing_in_clear(smtp_server, certificate):
    handler, port = await smtp_server()
    (attempt,) = await send(pool_for(port, smtp_tls="starttls", smtp_ca_file=certificate.cert_file), mails(1))
    assert attempt.phase is SmtpPhase.SESSION and attempt.code is None
    assert handler.received == []


async def test_a_connection_is_renewed_after_its_message_cap(smtp_server):
    handler, port = await smtp_server()
    assert delivered(await send(pool_for(port, smtp_max_messages_per_connection=2), mails(5)))
    assert handler.sessions == [2, 2, 1]


async def test_a_session_the_server_dropped_is_reopened_for_the_next_message(smtp_server):
    # The server silently drops each session after one message; the pool finds out at MAIL FROM of
    # the next one, when nothing of it has been sent, and sends it on a new session.
    handler, port = await smtp_server(RecordingHandler(drop_after=1))
    outgoing = mails(3)
    assert delivered(await send(pool_for(port), outgoing))
    assert handler.sessions == [1, 1, 1]
    assert [r.content for r in handler.received] == [m.data for m in outgoing]


async def test_the_pool_sends_over_as_many_sessions_as_its_size(smtp_server):
    handler, port = await smtp_server()
    assert delivered(await send(pool_for(port, smtp_pool_size=3), mails(6)))
    assert len(handler.sessions) == 3 and sum(handler.sessions) == 6
