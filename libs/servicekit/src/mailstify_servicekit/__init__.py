"""What every Mailstify service is built from: settings, database + migrations, unit of work,
the FastAPI app with health probes, the background runtime, internal auth and errors."""

from .app import RuntimeDep, UnitOfWorkDep, create_service_app, get_runtime
from .emails import normalise_email
from .errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError, Unauthorized, UpstreamUnavailable
from .internal import ACCOUNT_HEADER, TOKEN_HEADER, AccountId, InternalCaller, InternalClient
from .pagination import InvalidCursor, Page, PageCursor, PageLimit, decode_cursor, encode_cursor, split_page
from .runtime import MessageLoop, Runtime, ServiceSpec, close_extras
from .settings import ServiceSettings
from .unit_of_work import UnitOfWork

__all__ = [
    "ACCOUNT_HEADER",
    "AccountId",
    "Conflict",
    "Forbidden",
    "InternalCaller",
    "InternalClient",
    "InvalidCursor",
    "InvalidInput",
    "MessageLoop",
    "NotFound",
    "Runtime",
    "RuntimeDep",
    "ServiceError",
    "ServiceSettings",
    "ServiceSpec",
    "TOKEN_HEADER",
    "Unauthorized",
    "UnitOfWork",
    "UnitOfWorkDep",
    "UpstreamUnavailable",
    "close_extras",
    "create_service_app",
    "get_runtime",
    "normalise_email",
    "Page",
    "PageCursor",
    "PageLimit",
    "decode_cursor",
    "encode_cursor",
    "split_page",
]
