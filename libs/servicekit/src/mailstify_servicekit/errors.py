"""Errors the domain and service layer raise for the caller's mistakes. Pure: `app.py` translates
them to HTTP (API.md: `{"detail": "<human message>", ...}` with a 4xx status, never a 500)."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400

    def __init__(self, detail: str, **extra: object):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the body."""
        return {}


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class InvalidInput(ServiceError):
    status_code = 422


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class TooManyRequests(ServiceError):
    """Refused for now; `retry_after_seconds` says when trying again can succeed (Retry-After)."""

    status_code = 429

    def __init__(self, detail: str, retry_after_seconds: int):
        super().__init__(detail, retry_after_seconds=retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class UpstreamUnavailable(ServiceError):
    status_code = 503
