"""Mailstify wire contracts: events, subjects, streams and consumers. The only code services share
about each other."""

from . import subjects, topology
from .clock import utcnow
from .envelope import Event
from .events import (
    ALL_EVENTS,
    EVENTS_BY_TYPE,
    CampaignContent,
    CampaignControlChanged,
    CampaignRecipientsRequeued,
    CampaignSendRequested,
    CampaignStatus,
    CampaignStatusChanged,
    CampaignTestSendRequested,
    ControlState,
    DeliverEmail,
    DeliveryCancelled,
    DeliveryDeferred,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
    DeliverySucceeded,
    FanoutCompleted,
    FanoutFailed,
    Recipient,
    SubscriberChanged,
    SubscriberUnsubscribed,
    decode_event,
)

__all__ = [
    "ALL_EVENTS",
    "EVENTS_BY_TYPE",
    "CampaignContent",
    "CampaignControlChanged",
    "CampaignRecipientsRequeued",
    "CampaignSendRequested",
    "CampaignStatus",
    "CampaignStatusChanged",
    "CampaignTestSendRequested",
    "ControlState",
    "DeliverEmail",
    "DeliveryCancelled",
    "DeliveryDeferred",
    "DeliveryFailed",
    "DeliveryOutcomeUnknown",
    "DeliverySucceeded",
    "Event",
    "FanoutCompleted",
    "FanoutFailed",
    "Recipient",
    "SubscriberChanged",
    "SubscriberUnsubscribed",
    "decode_event",
    "subjects",
    "topology",
    "utcnow",
]
