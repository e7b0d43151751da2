from pydantic import Field

from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "dispatcher"
    # Recipients per page from the audience service = DeliverEmails per publish batch and checkpoint.
    fanout_page_size: int = Field(default=1000, ge=1, le=5000)
