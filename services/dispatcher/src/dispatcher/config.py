import dataclasses

from pydantic import Field

from mailstify_contracts import topology
from mailstify_contracts.topology import ConsumerSpec
from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # Recipients per page from the audience service = DeliverEmails per publish batch and checkpoint.
    fanout_page_size: int = Field(default=1000, ge=1, le=5000)
    # Deliveries of one send request before the dispatcher gives up on its fan-out (audience down or
    # erring, or any other error) and reports FanoutFailed: the campaign then shows `failed` with the
    # reason. With the consumer's backoff (1 s doubling, capped at 5 min, full jitter) 10 attempts
    # span about 4 minutes on average, 8.5 at most.
    fanout_max_attempts: int = Field(default=10, ge=1)
    # How long a send request whose dispatcher died mid-fan-out waits before it is delivered again
    # (to a restarted or another replica). A worker signals progress after every page and before
    # every back-pressure wait (at most 30 s), so keep it above that; a worker that overruns it only
    # costs a second worker that stops at its first step (the fan-out's version check).
    fanout_ack_wait_seconds: float = Field(default=topology.DISPATCHER_SEND_REQUESTS.ack_wait_seconds, ge=1)

    @property
    def send_requests_consumer(self) -> ConsumerSpec:
        return dataclasses.replace(topology.DISPATCHER_SEND_REQUESTS, ack_wait_seconds=self.fanout_ack_wait_seconds)
