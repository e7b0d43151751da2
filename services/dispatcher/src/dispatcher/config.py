from pydantic import Field

from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # Recipients per page from the audience service = DeliverEmails per publish batch and checkpoint.
    fanout_page_size: int = Field(default=1000, ge=1, le=5000)
    # Deliveries of one send request before the dispatcher gives up on its fan-out (audience down or
    # erring, or any other error) and reports FanoutFailed: the campaign then shows `failed` with the
    # reason. With the consumer's backoff (1 s doubling, capped at 5 min, full jitter) 10 attempts
    # span about 4 minutes on average, 8.5 at most.
    fanout_max_attempts: int = Field(default=10, ge=1)
