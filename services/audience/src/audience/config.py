from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "audience"
