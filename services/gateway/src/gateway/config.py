from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # How long a browser session lasts after login; the cookie expires with it.
    session_lifetime_hours: int = 24 * 14
    # Waiting for an upstream's answer (not for a stream's next event: streams wait as long as they last).
    upstream_timeout_seconds: float = 60.0

    @property
    def cookies_secure(self) -> bool:
        return self.public_url.lower().startswith("https://")
