"""CPU per message of building a campaign email, unsigned and DKIM-signed (rsa-sha256).

    .venv/bin/python bench/dkim_signing.py [--messages 2000]

Builds ~8 KB HTML messages with merge fields through `PreparedCampaign.build` (what the mailer sends,
what a preview shows), then the same with the mailer's `DkimSigner` on top, and prints µs/message
for each and the signing overhead, for 2048- and 1024-bit keys.
"""

from __future__ import annotations

import argparse
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailstify_contracts import CampaignContent, Recipient
from mailstify_rendering import HeaderOptions, PreparedCampaign

from mailer.adapters.dkim import DkimSigner

PARAGRAPH = "<p>Here is what is new this month: faster sending, calmer inboxes, and fewer surprises.</p>\n"
CONTENT = CampaignContent(
    subject="News for {{ subscriber.first_name }}",
    from_name="Acme News",
    from_email="news@acme.test",
    body_html="<p>Hello {{ subscriber.first_name }}, on your {{ subscriber.attributes.plan }} plan:</p>\n" + PARAGRAPH * 90,
    list_id="list-1",
)
DATE = "Tue, 24 Nov 2026 19:21:00 +0000"


def per_message_us(build, count: int) -> float:
    start = time.process_time()
    for n in range(count):
        build(n)
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages

    prepared = PreparedCampaign.prepare(CONTENT, options=HeaderOptions(unsubscribe_mailto="unsubscribe@acme.test"))
    recipients = [
        Recipient(subscriber_id=str(n), email=f"person{n}@example.com", first_name=f"Person{n}", attributes={"plan": "pro"})
        for n in range(count)
    ]

    def build(n: int) -> bytes:
        return prepared.build("cmp-1", recipients[n], f"https://mail.acme.test/u/token{n}", DATE)

    size = len(build(0))
    unsigned = per_message_us(build, count)
    print(f"message size {size} bytes, {count} messages, CPU time (process_time)")
    print(f"build, unsigned:        {unsigned:8.1f} µs/message")
    for bits in (2048, 1024):
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        signer = DkimSigner("bench", "acme.test", pem)
        signed = per_message_us(lambda n: signer.sign(build(n)), count)
        print(f"build + sign, RSA {bits}: {signed:8.1f} µs/message (signing {signed - unsigned:7.1f} µs)")


if __name__ == "__main__":
    main()
