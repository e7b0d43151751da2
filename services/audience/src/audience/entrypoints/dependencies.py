"""The unit of work each request gets, with the audience repositories on it."""

from typing import Annotated

from fastapi import Depends

from mailstify_servicekit import RuntimeDep

from ..service_layer.unit_of_work import AudienceUnitOfWork


def new_unit_of_work(runtime: RuntimeDep) -> AudienceUnitOfWork:
    return AudienceUnitOfWork(runtime.uow())


AudienceUow = Annotated[AudienceUnitOfWork, Depends(new_unit_of_work)]
