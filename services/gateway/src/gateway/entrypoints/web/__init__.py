"""The web app: server-rendered pages (Jinja2) enhanced with htmx, served by the gateway."""
