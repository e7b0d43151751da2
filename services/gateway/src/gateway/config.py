from pydantic import Field

from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # How long a browser session lasts after login; the cookie expires with it.
    session_lifetime_hours: int = 24 * 14
    # Waiting for an upstream's answer (not for a stream's next event: streams wait as long as they last).
    upstream_timeout_seconds: float = 60.0
    # Event streams: at most one update per campaign (or list) this often, a comment after this long
    # without output (proxies close idle connections), and how long a browser waits to reconnect.
    event_stream_min_interval_seconds: float = Field(0.25, ge=0)
    event_stream_heartbeat_seconds: float = Field(15.0, gt=0)
    event_stream_retry_milliseconds: int = Field(3000, ge=0)
    # How long a web page waits for an internal service before it says the service is unavailable
    # (the promise: a clear message within 5 s).
    page_timeout_seconds: float = 4.0
    # The dev SMTP inbox's web API; set by the embedded dev stack only, which shows an Inbox page then.
    inbox_url: str | None = None

    @property
    def cookies_secure(self) -> bool:
        return self.public_url.lower().startswith("https://")
