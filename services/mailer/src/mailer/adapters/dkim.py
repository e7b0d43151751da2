"""DKIM signing (RFC 6376, rsa-sha256, relaxed/simple) of the messages the mailer sends.

dkimpy's canonicalisation, header selection and folding are used as they are; its `sign()` is not,
because it parses the PEM key and the whole message on every call and signs with pure-Python RSA
(~50 ms a message here). This signer loads the key once into an OpenSSL key object, and splits the
message only at its header block: the body is hashed, never parsed.

Headers are canonicalised relaxed (a relay may refold them); the body simple: its parts are 7bit or
quoted-printable, and neither has a line ending in whitespace (`encoded_part` sends a part as it is
only when none does), and dkimpy's relaxed body canonicalisation
costs ~0.8 ms per 10 KB message, more than the RSA signature.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim import RE_BTAG, fold, hash_headers, rfc822_parse
from dkim.canonicalization import CanonicalizationPolicy

from ..domain.model import SmtpAttempt
from ..service_layer.ports import OutgoingMail, Sender

# Signed when present; From, Subject, Date, Message-ID and the List-Unsubscribe pair always are.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
    b"mime-version",
    b"content-type",
)
# Listed once more than they occur, so that a copy added on the way breaks the signature (RFC 6376
# §8.15): a second From, or a second unsubscribe target, must not pass as ours.
OVERSIGNED_HEADERS = (b"from", b"list-unsubscribe", b"list-unsubscribe-post")
_CANONICALIZATION = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
_SIGNATURE_HEADER = b"DKIM-Signature"
# A placeholder as long as a signature's first line, so that `b=` folds onto a line of its own and
# the folding of the tags before it is the same with the placeholder and with the signature.
_PLACEHOLDER = b"0" * 60


class DkimSigner:
    def __init__(self, selector: str, domain: str, private_key_pem: bytes, clock: Callable[[], float] = time.time):
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the DKIM private key is not an unencrypted PEM key: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the DKIM private key must be an RSA key (rsa-sha256)")
        self._key = key
        self._selector = selector.encode("ascii")
        self._domain = domain.encode("idna")
        self._clock = clock

    def public_key_record(self) -> bytes:
        """The TXT record to publish at `<selector>._domainkey.<domain>`."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header prepended (CRLF line endings expected)."""
        head, _, body = message.partition(b"\r\n\r\n")
        # Only the headers signed are canonicalised: the rest cannot change the hash.
        signed = [(name, value) for name, value in rfc822_parse(head + b"\r\n\r\n")[0] if name.lower() in SIGNED_HEADERS]
        present = [name.lower() for name, _ in signed]
        include = present + [name for name in OVERSIGNED_HEADERS if name in present]
        body_hash = hashlib.sha256(_CANONICALIZATION.canonicalize_body(body)).digest()
        tags = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", _CANONICALIZATION.to_c_value()),
            (b"d", self._domain),
            (b"s", self._selector),
            (b"t", str(int(self._clock())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", base64.b64encode(body_hash)),
            (b"b", _PLACEHOLDER),
        ]
        unsigned = RE_BTAG.sub(b"\\1", _folded(tags))
        hasher = hashlib.sha256()
        hash_headers(
            hasher,
            _CANONICALIZATION,
            _CANONICALIZATION.canonicalize_headers(signed),
            include,
            (_SIGNATURE_HEADER, b" " + unsigned),
            dict(tags),
        )
        signature = self._key.sign(hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        tags[-1] = (b"b", base64.b64encode(signature))
        return _SIGNATURE_HEADER + b": " + _folded(tags) + b"\r\n" + message


def _folded(tags: list[tuple[bytes, bytes]]) -> bytes:
    return fold(b"; ".join(b"=".join(tag) for tag in tags), namelen=len(_SIGNATURE_HEADER), linesep=b"\r\n")


class SigningSender:
    """A Sender that DKIM-signs every message, then hands it to the one that sends."""

    def __init__(self, sender: Sender, signer: DkimSigner):
        self._sender = sender
        self._signer = signer

    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        signed = [OutgoingMail(mail.mail_from, mail.rcpt_to, self._signer.sign(mail.data)) for mail in mails]
        return await self._sender.send_all(signed, start_before)
