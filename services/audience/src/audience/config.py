from mailstify_servicekit import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "audience"
