"""What every Mailstify service is built from: settings, database + migrations, unit of work,
the FastAPI app with health probes, the background runtime, internal auth and errors.

Domain and service-layer code import the pure modules directly (`mailstify_servicekit.errors`,
`.emails`, `.pagination`, `.ports`): this package's top level also pulls in FastAPI, SQLAlchemy
and NATS, which those layers must not depend on (see the import contracts in pyproject.toml)."""

from .app import create_service_app, dependencies_of, runtime_of
from .emails import normalise_email
from .errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError, Unauthorized, UpstreamUnavailable
from .internal import ACCOUNT_HEADER, PUBLIC_HEADER, TOKEN_HEADER, AccountId, InternalCaller, InternalClient, InternalOnly
from .pagination import InvalidCursor, Page, decode_cursor, encode_cursor, split_page
from .params import PageCursor, PageLimit
from .runtime import Connections, MessageLoop, Runtime, ServiceSpec, Wiring
from .settings import ServiceSettings
from .text import RequestModel
from .unit_of_work import SingleStatementUnitOfWork, UnitOfWork

__all__ = [
    "ACCOUNT_HEADER",
    "AccountId",
    "Conflict",
    "Connections",
    "Forbidden",
    "InternalCaller",
    "InternalClient",
    "InternalOnly",
    "PUBLIC_HEADER",
    "RequestModel",
    "InvalidCursor",
    "InvalidInput",
    "MessageLoop",
    "NotFound",
    "Page",
    "PageCursor",
    "PageLimit",
    "Runtime",
    "ServiceError",
    "ServiceSettings",
    "ServiceSpec",
    "SingleStatementUnitOfWork",
    "TOKEN_HEADER",
    "Unauthorized",
    "UnitOfWork",
    "UpstreamUnavailable",
    "Wiring",
    "create_service_app",
    "decode_cursor",
    "dependencies_of",
    "encode_cursor",
    "normalise_email",
    "runtime_of",
    "split_page",
]
