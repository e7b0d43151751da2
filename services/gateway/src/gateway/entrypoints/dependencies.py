"""The unit of work each request gets, with the gateway's repository on it."""

from typing import Annotated

from fastapi import Depends

from mailstify_servicekit import RuntimeDep

from ..service_layer.unit_of_work import GatewayUnitOfWork


def new_unit_of_work(runtime: RuntimeDep) -> GatewayUnitOfWork:
    return GatewayUnitOfWork(runtime.uow())


GatewayUow = Annotated[GatewayUnitOfWork, Depends(new_unit_of_work)]
