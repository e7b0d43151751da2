import pytest

from mailer.domain.classification import classify, is_hard_bounce
from mailer.domain.model import SmtpAttempt, Status


def test_250_is_sent():
    outcome = classify(SmtpAttempt(250, "2.0.0 Ok: queued as 123"), last_attempt=False)
    assert outcome.status is Status.SENT
    assert outcome.smtp_code == 250
    assert outcome.smtp_reply == "2.0.0 Ok: queued as 123"


@pytest.mark.parametrize("code", [421, 450, 451, 452])
def test_4xx_is_retried_with_the_consumers_backoff(code):
    outcome = classify(SmtpAttempt(code, "4.2.1 try later"), last_attempt=False)
    assert outcome.status is Status.RETRY
    assert outcome.smtp_code == code
    assert outcome.retry_after is None  # None = exponential backoff with jitter (Delivery.retry)


def test_no_reply_is_retried():
    outcome = classify(SmtpAttempt(None, "SMTPServerDisconnected: connection lost"), last_attempt=False)
    assert outcome.status is Status.RETRY


@pytest.mark.parametrize("attempt", [SmtpAttempt(451, "4.3.0 busy"), SmtpAttempt(None, "TimeoutError")])
def test_temporary_failure_on_the_last_delivery_fails_not_permanently(attempt):
    outcome = classify(attempt, last_attempt=True)
    assert outcome.status is Status.FAILED
    assert outcome.permanent is False
    assert outcome.hard_bounce is False
    assert outcome.reason.startswith("retries exhausted")


@pytest.mark.parametrize("code", [550, 551, 553])
def test_mailbox_5xx_is_a_permanent_hard_bounce(code):
    outcome = classify(SmtpAttempt(code, "5.1.1 <x@example.com>: Recipient address rejected"), last_attempt=False)
    assert outcome.status is Status.FAILED
    assert outcome.permanent is True
    assert outcome.hard_bounce is True
    assert outcome.smtp_code == code


@pytest.mark.parametrize("code", [552, 554, 500])
def test_other_5xx_is_permanent_without_bounce(code):
    outcome = classify(SmtpAttempt(code, "5.3.4 message too big"), last_attempt=False)
    assert (outcome.status, outcome.permanent, outcome.hard_bounce) == (Status.FAILED, True, False)


def test_550_policy_rejection_is_not_a_hard_bounce():
    assert is_hard_bounce(550, "5.7.1 Message rejected as spam") is False
    assert is_hard_bounce(550, "5.1.1 No such user") is True
    assert is_hard_bounce(550, "No such user here") is True


def test_5xx_is_permanent_even_on_an_early_delivery_and_never_retried():
    assert classify(SmtpAttempt(550, "no"), last_attempt=False).status is Status.FAILED


def test_not_attempted_is_retried_soon_and_fails_on_the_last_delivery():
    early = classify(SmtpAttempt.not_attempted(), last_attempt=False)
    assert early.status is Status.RETRY and early.retry_after is not None and early.retry_after <= 5
    last = classify(SmtpAttempt.not_attempted(), last_attempt=True)
    assert (last.status, last.permanent) == (Status.FAILED, False)


def test_unexpected_3xx_is_treated_as_temporary():
    assert classify(SmtpAttempt(354, "go ahead"), last_attempt=False).status is Status.RETRY
