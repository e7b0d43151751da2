"""The headers bulk mail is judged by (RFC 2369, 2919, 8058, Gmail's Feedback-ID), as a reader parses them."""

import email
from email import policy
from email.message import EmailMessage

import pytest

from mailstify_contracts import Recipient
from mailstify_rendering import HeaderOptions, PreparedCampaign

from .conftest import content

DATE = "Tue, 24 Nov 2026 19:21:00 +0000"
URL = "https://mail.example.com/u/abc.def"
JANE = Recipient(subscriber_id="42", email="jane@example.com", first_name="Jane")


def sent(options: HeaderOptions = HeaderOptions(), campaign_id: str = "cmp-1", **overrides) -> EmailMessage:
    prepared = PreparedCampaign.prepare(content(**overrides), options=options)
    return email.message_from_bytes(prepared.build(campaign_id, JANE, URL, DATE), policy=policy.default)


def test_a_campaign_message_carries_the_bulk_mail_headers():
    message = sent(list_id="list-7", reply_to="help@acme.test")
    assert message["Date"] == DATE
    assert message["Message-ID"] == "<cmp-1.42@acme.test>"
    assert message["List-Id"] == "<list-7.acme.test>"
    assert message["Precedence"] == "bulk"
    assert message["Feedback-ID"] == "cmp-1:list-7:mailstify"
    assert message["Reply-To"] == "help@acme.test"
    assert message["List-Unsubscribe"] == f"<{URL}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    assert not message.defects


def test_without_a_reply_to_there_is_no_reply_to_header():
    assert "Reply-To" not in sent()


def test_the_list_id_is_the_lists_whatever_the_campaign():
    first, second = sent(campaign_id="cmp-1", list_id="list-7"), sent(campaign_id="cmp-2", list_id="list-7")
    assert first["List-Id"] == second["List-Id"] == "<list-7.acme.test>"
    assert first["Feedback-ID"] != second["Feedback-ID"]


def test_content_without_a_list_id_is_labelled_by_its_campaign():
    message = sent(campaign_id="cmp-9")
    assert message["List-Id"] == "<cmp-9.acme.test>"
    assert message["Feedback-ID"] == "cmp-9:cmp-9:mailstify"


def test_ids_are_escaped_so_that_feedback_id_fields_and_list_labels_stay_apart():
    message = sent(campaign_id="a:b", list_id="x.y z")
    assert message["Feedback-ID"] == "a%3Ab:x%2Ey%20z:mailstify"
    assert message["List-Id"] == "<x%2Ey%20z.acme.test>"


def test_a_configured_mailto_is_offered_beside_the_https_link_with_the_links_token():
    options = HeaderOptions(unsubscribe_mailto="unsubscribe@acme.test", feedback_id_sender="acme.mail")
    message = sent(options, list_id="list-7")
    assert message["List-Unsubscribe"] == f"<{URL}>, <mailto:unsubscribe@acme.test?subject=unsubscribe%20abc.def>"
    assert message["Feedback-ID"] == "cmp-1:list-7:acme.mail"


@pytest.mark.parametrize(
    "options",
    [
        {"unsubscribe_mailto": "not an address"},
        {"unsubscribe_mailto": "x@example.com>\r\nBcc: y@z"},
        {"feedback_id_sender": "has:colon"},
        {"feedback_id_sender": ""},
    ],
)
def test_header_options_that_would_break_a_header_are_refused(options):
    with pytest.raises(ValueError):
        HeaderOptions(**options)
