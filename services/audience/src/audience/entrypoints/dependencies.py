"""What each request gets: the wired dependencies, and a new unit of work from them."""

from typing import Annotated

from fastapi import Depends, Request

from mailstify_servicekit import dependencies_of

from ..service_layer.dependencies import AudienceDependencies
from ..service_layer.ports import AudienceUnitOfWork


def audience_dependencies(request: Request) -> AudienceDependencies:
    return dependencies_of(request)


def new_unit_of_work(dependencies: Annotated[AudienceDependencies, Depends(audience_dependencies)]) -> AudienceUnitOfWork:
    return dependencies.uow()


Dependencies = Annotated[AudienceDependencies, Depends(audience_dependencies)]
AudienceUow = Annotated[AudienceUnitOfWork, Depends(new_unit_of_work)]
