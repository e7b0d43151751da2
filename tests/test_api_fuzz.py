"""Property-based fuzzing of the published API: schemathesis generates requests, valid and invalid,
from the gateway's merged `/api/openapi.json` and sends them to the running stack (loopback only,
a bounded number per operation). Whatever it sends, no answer is a 5xx (API.md)."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings


pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 15
# Server-sent event streams stay open for as long as the client listens: a fuzzer would wait on each
# one until its timeout. They are exercised by tests/test_live_events.py instead.
EVENT_STREAMS = r"/events$"
METHODS = {"get", "put", "post", "patch", "delete"}

# Filled by the fuzz test, checked by the test after it (same module: pytest runs them in order).
SENT: Counter[str] = Counter()
EXPECTED: set[str] = set()
STARTED: list[float] = []


@pytest.fixture
def public_api(mailstify_stack) -> schemathesis.BaseSchema:
    gateway = mailstify_stack.gateway_url
    assert gateway.startswith("http://127.0.0.1:"), gateway  # the fuzz never leaves loopback
    with httpx.Client(base_url=gateway, timeout=30) as anonymous:
        email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
        signup = anonymous.post("/api/v1/auth/signup", json={"email": email, "password": "correct horse 1"})
        assert signup.status_code == 201, signup.text
        key = anonymous.post(
            "/api/v1/api-keys", json={"name": "fuzz"}, headers={"X-CSRF-Token": anonymous.cookies["mailstify_csrf"]}
        )
        assert key.status_code == 201, key.text
        document = anonymous.get("/api/openapi.json").json()
    EXPECTED.update(
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method in METHODS and not re.search(EVENT_STREAMS, path)
    )
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(
        base_url=gateway, headers={"Authorization": f"Bearer {key.json()['key']}"}, request_timeout=30
    )
    schema.config.generation.update(max_examples=EXAMPLES_PER_OPERATION)
    return schema


schema = schemathesis.pytest.from_fixture("public_api").exclude(path_regex=EVENT_STREAMS)


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure here is reproducible
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    if not STARTED:
        STARTED.append(time.monotonic())
    SENT[case.operation.label] += 1
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])


def test_every_public_operation_was_fuzzed() -> None:
    assert len(EXPECTED) >= 15, sorted(EXPECTED)
    missing = EXPECTED - set(SENT)
    assert not missing, f"never fuzzed: {sorted(missing)}"
    elapsed = time.monotonic() - STARTED[0]
    print(f"\nfuzz: {sum(SENT.values())} requests over {len(SENT)} operations in {elapsed:.0f}s")
