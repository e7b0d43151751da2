"""Mailstify audience service."""
