"""The gateway's unit of work on PostgreSQL: one transaction over the identity store and
the failed logins."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .login_failures import SqlLoginFailures
from .repository import SqlIdentityRepository


class SqlGatewayUnitOfWork(RepositoryUnitOfWork):
    identities: SqlIdentityRepository
    login_failures: SqlLoginFailures

    def attach(self, session: AsyncSession) -> None:
        self.identities = SqlIdentityRepository(session)
        self.login_failures = SqlLoginFailures(session)
