"""What each request gets from the wired dependencies."""

from typing import Annotated

from fastapi import Depends, Request

from mailstify_servicekit import dependencies_of

from ..service_layer.dependencies import CampaignDependencies
from ..service_layer.ports import CampaignUnitOfWork, ListDirectory, RecipientDirectory, MessageSettings


def campaign_dependencies(request: Request) -> CampaignDependencies:
    return dependencies_of(request)


Dependencies = Annotated[CampaignDependencies, Depends(campaign_dependencies)]


def new_unit_of_work(dependencies: Dependencies) -> CampaignUnitOfWork:
    return dependencies.uow()


def audience_lists(dependencies: Dependencies) -> ListDirectory:
    return dependencies.lists


def audience_recipients(dependencies: Dependencies) -> RecipientDirectory:
    return dependencies.recipients


def unsubscribe_links(dependencies: Dependencies) -> MessageSettings:
    return dependencies.links


Uow = Annotated[CampaignUnitOfWork, Depends(new_unit_of_work)]
Lists = Annotated[ListDirectory, Depends(audience_lists)]
Recipients = Annotated[RecipientDirectory, Depends(audience_recipients)]
Links = Annotated[MessageSettings, Depends(unsubscribe_links)]
