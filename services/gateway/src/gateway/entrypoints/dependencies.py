"""What each request gets from the wired dependencies."""

from typing import Annotated

from fastapi import Depends, Request

from mailstify_servicekit import dependencies_of

from ..service_layer.dependencies import GatewayDependencies
from ..service_layer.ports import GatewayUnitOfWork


def gateway_dependencies(request: Request) -> GatewayDependencies:
    return dependencies_of(request)


Dependencies = Annotated[GatewayDependencies, Depends(gateway_dependencies)]


def new_unit_of_work(dependencies: Dependencies) -> GatewayUnitOfWork:
    return dependencies.uow()


GatewayUow = Annotated[GatewayUnitOfWork, Depends(new_unit_of_work)]
