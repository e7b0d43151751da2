from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    """The audience service reads only the settings every service shares."""
