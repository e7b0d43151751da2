"""Mailstify campaign service."""
