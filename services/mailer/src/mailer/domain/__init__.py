"""Pure delivery logic: claiming decisions, SMTP outcome classification, rendering, MIME, tokens."""
