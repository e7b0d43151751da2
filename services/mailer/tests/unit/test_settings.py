"""The mailer's settings that protect a stopping mailer's batch (defect B9)."""

from __future__ import annotations

import os

import pytest

from mailer.config import SHUTDOWN_RECORD_SECONDS, Settings

DATABASE_URL = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture(autouse=True)
def no_mailstify_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("MAILSTIFY_")]:
        monkeypatch.delenv(name)


def test_the_default_shutdown_grace_covers_one_smtp_transaction_and_its_recording():
    assert Settings(database_url=DATABASE_URL).shutdown_grace_seconds == 30.0 + SHUTDOWN_RECORD_SECONDS
    assert Settings(database_url=DATABASE_URL, smtp_timeout=60).shutdown_grace_seconds == 60 + SHUTDOWN_RECORD_SECONDS


def test_an_explicit_shutdown_grace_is_kept(monkeypatch):
    assert Settings(database_url=DATABASE_URL, shutdown_grace_seconds=3).shutdown_grace_seconds == 3
    monkeypatch.setenv("MAILSTIFY_SHUTDOWN_GRACE_SECONDS", "7")
    assert Settings(database_url=DATABASE_URL).shutdown_grace_seconds == 7


def test_the_exhausted_sweep_interval_is_a_setting(monkeypatch):
    assert Settings(database_url=DATABASE_URL).exhausted_sweep_seconds == 30.0
    monkeypatch.setenv("MAILSTIFY_EXHAUSTED_SWEEP_SECONDS", "5")
    assert Settings(database_url=DATABASE_URL).exhausted_sweep_seconds == 5.0
