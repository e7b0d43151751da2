from pydantic import Field

from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    """The settings every service shares, and how often scheduled campaigns are looked for."""

    # A scheduled campaign starts at most this long after its time (MAILSTIFY_SCHEDULE_POLL_SECONDS).
    schedule_poll_seconds: float = Field(1.0, gt=0, le=60)
