from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    """The campaign service reads only the settings every service shares."""
