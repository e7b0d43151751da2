"""Mailstify wire contracts: events, subjects, streams and consumers. The only code services share
about each other."""

from . import subjects, topology
from .envelope import Event
from .events import (
    ALL_EVENTS,
    EVENTS_BY_TYPE,
    CampaignContent,
    CampaignSendRequested,
    CampaignStatus,
    CampaignStatusChanged,
    DeliverEmail,
    DeliveryFailed,
    DeliverySucceeded,
    FanoutCompleted,
    Recipient,
    decode_event,
)

__all__ = [
    "ALL_EVENTS",
    "EVENTS_BY_TYPE",
    "CampaignContent",
    "CampaignSendRequested",
    "CampaignStatus",
    "CampaignStatusChanged",
    "DeliverEmail",
    "DeliveryFailed",
    "DeliverySucceeded",
    "Event",
    "FanoutCompleted",
    "Recipient",
    "decode_event",
    "subjects",
    "topology",
]
