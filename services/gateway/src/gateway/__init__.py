"""Mailstify gateway service."""
