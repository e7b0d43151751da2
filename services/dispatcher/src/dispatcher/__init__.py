"""Mailstify dispatcher service."""
