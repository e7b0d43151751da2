"""Which service owns which path, and which headers cross the edge."""

from __future__ import annotations

import pytest

from gateway.domain import routing


@pytest.mark.parametrize(
    "path, service",
    [
        ("/api/v1/lists", "audience"),
        ("/api/v1/lists/12/subscribers", "audience"),
        ("/api/v1/imports/9", "audience"),
        ("/api/v1/campaigns", "campaign"),
        ("/api/v1/campaigns/c1/events", "campaign"),
        ("/api/v1/listsx", None),
        ("/api/v1/auth/me", None),
        ("/api/v2/lists", None),
        ("/lists", None),
    ],
)
def test_paths_route_by_their_first_segment(path: str, service: str | None) -> None:
    assert routing.upstream_for(path) == service


def test_only_allow_listed_request_headers_are_forwarded() -> None:
    incoming = [
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
        ("Last-Event-ID", "7"),
        ("Cookie", "mailstify_session=secret"),
        ("Authorization", "Bearer msk_secret"),
        ("X-Mailstify-Account", "someone-else"),
        ("X-Mailstify-Internal-Token", "guess"),
        ("X-CSRF-Token", "t"),
        ("Connection", "keep-alive"),
        ("Host", "public.example.com"),
    ]
    assert routing.request_headers_to_forward(incoming) == [
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
        ("Last-Event-ID", "7"),
    ]


def test_hop_by_hop_and_cookie_response_headers_stay_behind() -> None:
    answered = [
        ("content-type", "text/csv"),
        ("content-disposition", "attachment; filename=list.csv"),
        ("cache-control", "no-cache"),
        ("transfer-encoding", "chunked"),
        ("connection", "close"),
        ("content-length", "10"),
        ("set-cookie", "x=1"),
        ("server", "uvicorn"),
    ]
    assert routing.response_headers_to_return(answered) == answered[:3]


def test_event_streams_are_recognised_by_accept() -> None:
    assert routing.wants_event_stream("text/event-stream")
    assert routing.wants_event_stream("Text/Event-Stream, */*")
    assert not routing.wants_event_stream("application/json")
    assert not routing.wants_event_stream(None)
