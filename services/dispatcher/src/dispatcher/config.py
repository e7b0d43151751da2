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
    # (to a restarted or another replica, which resumes from the last checkpoint). A working
    # dispatcher resets the deadline every third of it (`fanout_heartbeat_seconds`), whatever it is
    # waiting for; a worker that overruns it anyway only costs a second worker that stops at its
    # first step (the fan-out's version check).
    fanout_ack_wait_seconds: float = Field(default=topology.DISPATCHER_SEND_REQUESTS.ack_wait_seconds, ge=3)
    # Messages waiting in the MAIL work queue (all campaigns, not yet settled by a mailer) at or above
    # which the fan-out holds its next page: the backlog, and NATS's memory, stay about this plus one
    # page per fanning-out dispatcher, whatever the list's size (decision 0021).
    fanout_window: int = Field(default=100_000, ge=1)

    @property
    def fanout_heartbeat_seconds(self) -> float:
        return self.fanout_ack_wait_seconds / 3

    @property
    def send_requests_consumer(self) -> ConsumerSpec:
        return dataclasses.replace(topology.DISPATCHER_SEND_REQUESTS, ack_wait_seconds=self.fanout_ack_wait_seconds)
