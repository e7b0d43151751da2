from pydantic import Field

from mailstify_rendering import HeaderOptions
from mailstify_servicekit.settings import MessageHeaderSettings, ServiceSettings


class Settings(ServiceSettings, MessageHeaderSettings):
    """The settings every service shares, the message headers previews show (as the mailer writes
    them), and how often scheduled campaigns are looked for."""

    # A scheduled campaign starts at most this long after its time (MAILSTIFY_SCHEDULE_POLL_SECONDS).
    schedule_poll_seconds: float = Field(1.0, gt=0, le=60)

    @property
    def header_options(self) -> HeaderOptions:
        return HeaderOptions(unsubscribe_mailto=self.list_unsubscribe_mailto, feedback_id_sender=self.feedback_id_sender)
