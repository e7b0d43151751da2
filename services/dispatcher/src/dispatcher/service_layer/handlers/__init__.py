"""The dispatcher's use cases: the fan-out of a campaign's send, and sends to named recipients."""

from .fanout import Dispatcher
from .named_sends import NamedRecipientSends

__all__ = ["Dispatcher", "NamedRecipientSends"]
