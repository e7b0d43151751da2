"""Mailstify mailer service."""
