"""The delivery ledger: one row per (campaign, subscriber), the mailer's memory of what it sent
(table `deliveries`, created in migration 0001).

Both hot-path operations are one statement per batch (ARCHITECTURE §6 rule 6): ids travel as
parallel arrays and are `unnest`ed server-side, so a batch of 200 costs one round trip, not 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_contracts import DeliveriesSucceeded, subjects
from mailstify_messaging import OutboxArrays

from ..domain.model import OUTCOME_UNKNOWN_REASON, Claim, DeliveryKey, Status, claim_state
from ..service_layer.ports import ClaimRequest, DeliveredReport, GiveUp, HeldClaim, RecordedOutcome, SettledWave

# One statement claims the whole batch:
# - `batch` turns the parallel arrays into rows; ORDER BY makes every replica lock rows in the same
#   order, so two replicas claiming overlapping batches cannot deadlock.
# - new keys are inserted `claimed` with a lease: reserved, not on the wire yet. On conflict, a
#   `retry` row, or a `claimed` row whose lease ran out (its replica died before sending it), is
#   re-claimed (attempts + 1, which fences the old claim out); a `sending` row whose lease ran out is
#   an abandoned send: it becomes `unknown`, never re-sent (§6 rule 3). A `failed` or `unknown` row
#   of an earlier round is claimed afresh for the later round (retry-failed: attempts from 1). Other
#   rows are left alone (terminal, or leased by a live replica).
# - the final SELECT reads `deliveries` with the statement's snapshot, i.e. the rows as they were
#   before this statement: that is what tells the untouched rows' status and remaining lease.
#   A row another replica inserted concurrently is invisible there (NULL) and counts as busy.
_NEW_ROUND = "(d.round < excluded.round AND d.status IN ('failed', 'unknown'))"
_RECLAIMABLE = "(d.status = 'retry' OR (d.status = 'claimed' AND d.lease_until < now()))"
_CLAIM = sa.text(
    f"""
    WITH batch AS (
        SELECT * FROM unnest(
            CAST(:campaign_ids AS text[]), CAST(:subscriber_ids AS text[]),
            CAST(:account_ids AS text[]), CAST(:emails AS text[]), CAST(:message_ids AS text[]),
            CAST(:rounds AS int[])
        ) AS b(campaign_id, subscriber_id, account_id, email, message_id, round)
        ORDER BY campaign_id, subscriber_id
    ),
    changed AS (
        INSERT INTO deliveries AS d
            (campaign_id, subscriber_id, account_id, email, status, attempts, lease_until, message_id, round,
             updated_at)
        SELECT campaign_id, subscriber_id, account_id, email, 'claimed', 1,
               now() + make_interval(secs => :lease_seconds), message_id, round, now()
        FROM batch
        ON CONFLICT (campaign_id, subscriber_id) DO UPDATE SET
            status = CASE WHEN {_RECLAIMABLE} OR {_NEW_ROUND} THEN 'claimed' ELSE 'unknown' END,
            attempts = CASE WHEN {_NEW_ROUND} THEN 1 WHEN {_RECLAIMABLE} THEN d.attempts + 1 ELSE d.attempts END,
            lease_until = CASE WHEN {_RECLAIMABLE} OR {_NEW_ROUND} THEN excluded.lease_until END,
            smtp_code = CASE WHEN {_RECLAIMABLE} AND NOT {_NEW_ROUND} THEN d.smtp_code END,
            smtp_reply = CASE WHEN {_NEW_ROUND} THEN NULL WHEN {_RECLAIMABLE} THEN d.smtp_reply
                              ELSE :unknown_reason END,
            round = CASE WHEN {_NEW_ROUND} THEN excluded.round ELSE d.round END,
            message_id = coalesce(excluded.message_id, d.message_id),
            updated_at = now()
        WHERE {_RECLAIMABLE} OR (d.status = 'sending' AND d.lease_until < now()) OR {_NEW_ROUND}
        RETURNING d.campaign_id, d.subscriber_id, d.status, d.attempts
    )
    SELECT b.campaign_id, b.subscriber_id,
           coalesce(c.status, d.status) AS status,
           c.status IS NOT NULL AS changed,
           coalesce(c.attempts, d.attempts, 0) AS attempts,
           extract(epoch FROM d.lease_until - now())::float8 AS lease_remaining
    FROM batch b
    LEFT JOIN changed c ON c.campaign_id = b.campaign_id AND c.subscriber_id = b.subscriber_id
    LEFT JOIN deliveries d ON d.campaign_id = b.campaign_id AND d.subscriber_id = b.subscriber_id
    """
)

# Claims still waiting for their wave, kept ours: a batch sent slowly (a slow relay) outlasts the
# claim lease, which must stay short so that a dead replica's claims are taken over quickly.
_EXTEND_CLAIMS = sa.text(
    """
    UPDATE deliveries AS d SET lease_until = now() + make_interval(secs => :lease_seconds)
    FROM unnest(CAST(:campaign_ids AS text[]), CAST(:subscriber_ids AS text[]), CAST(:attempts AS int[]))
        AS o(campaign_id, subscriber_id, attempts)
    WHERE d.campaign_id = o.campaign_id AND d.subscriber_id = o.subscriber_id
      AND d.status = 'claimed' AND d.attempts = o.attempts
    """
)

# One wave's transaction is this one statement (a wave is half the SMTP pool, so a batch of 200 is
# several of them, and four round trips each were most of the mailer's database time):
# - `recorded`: the previous wave's outcomes, in one UPDATE ... FROM unnest. Fenced by our claim's
#   attempts, on a row still `claimed` (settled without a send: cancelled, unbuildable) or `sending`:
#   if our lease ran out and another replica recorded the row `unknown` or took the claim over
#   meanwhile, that verdict stands and RETURNING leaves the row out.
# - `reported`: the result event of each row actually recorded, into the outbox (rows left out above
#   report nothing: the other replica's verdict was reported already).
# - `delivered` and `reported_together`: the successes actually recorded, one DeliveriesSucceeded per
#   campaign (decision 0027). Python cannot know beforehand which rows the statement will record, so
#   it binds each campaign's event with no deliveries and each success's delivery as JSON, and the
#   statement fills in the deliveries it recorded; a campaign with none recorded reports nothing.
#   The deliveries are bound as one JSON document, not a text array: psycopg escapes every quote of
#   an array element with a regex substitution in Python.
# - `marked`: the next wave's claims, moved to `sending` just before they go on the wire. Fenced the
#   same way: a claim another replica took over after our lease ran out is not ours to send, and
#   RETURNING leaves it out. Only these rows can become `unknown` if this replica dies, which bounds
#   the ambiguous sends of a crash to the messages on the wire.
# The two UPDATEs touch disjoint rows (a wave's keys are recorded only after they were marked).
_SETTLE_WAVE = sa.text(
    f"""
    WITH recorded AS (
        UPDATE deliveries AS d SET
            status = o.status,
            smtp_code = o.smtp_code,
            smtp_reply = o.smtp_reply,
            lease_until = NULL,
            updated_at = now()
        FROM unnest(
            CAST(:campaign_ids AS text[]), CAST(:subscriber_ids AS text[]), CAST(:attempts AS int[]),
            CAST(:statuses AS text[]), CAST(:smtp_codes AS int[]), CAST(:smtp_replies AS text[])
        ) AS o(campaign_id, subscriber_id, attempts, status, smtp_code, smtp_reply)
        WHERE d.campaign_id = o.campaign_id AND d.subscriber_id = o.subscriber_id
          AND d.status IN ('claimed', 'sending') AND d.attempts = o.attempts
        RETURNING d.campaign_id, d.subscriber_id
    ),
    reported AS (
        {OutboxArrays.INSERT}
        SELECT e.event_id, e.subject, e.msg_id, e.payload, {OutboxArrays.HEADERS}
        FROM unnest(CAST(:report_campaign_ids AS text[]), CAST(:report_subscriber_ids AS text[]),
                    {OutboxArrays.UNNEST_ARGS}) AS e(campaign_id, subscriber_id, {OutboxArrays.COLUMNS})
        JOIN recorded r ON r.campaign_id = e.campaign_id AND r.subscriber_id = e.subscriber_id
    ),
    delivered AS (
        SELECT s.campaign_id, jsonb_agg(s.delivery) AS deliveries
        FROM jsonb_to_recordset(CAST(:deliveries AS jsonb)) AS s(campaign_id text, subscriber_id text, delivery jsonb)
        JOIN recorded r ON r.campaign_id = s.campaign_id AND r.subscriber_id = s.subscriber_id
        GROUP BY s.campaign_id
    ),
    reported_together AS (
        {OutboxArrays.INSERT}
        SELECT e.event_id, e.subject, e.msg_id,
               convert_to(CAST(jsonb_set(CAST(convert_from(e.payload, 'UTF8') AS jsonb), '{{deliveries}}',
                                         d.deliveries) AS text), 'UTF8'),
               {OutboxArrays.HEADERS}
        FROM unnest(CAST(:together_campaign_ids AS text[]), {OutboxArrays.unnest_args("together")})
            AS e(campaign_id, {OutboxArrays.COLUMNS})
        JOIN delivered d ON d.campaign_id = e.campaign_id
    ),
    marked AS (
        UPDATE deliveries AS d SET
            status = 'sending', lease_until = now() + make_interval(secs => :lease_seconds), updated_at = now()
        FROM unnest(CAST(:mark_campaign_ids AS text[]), CAST(:mark_subscriber_ids AS text[]),
                    CAST(:mark_attempts AS int[])) AS o(campaign_id, subscriber_id, attempts)
        WHERE d.campaign_id = o.campaign_id AND d.subscriber_id = o.subscriber_id
          AND d.status = 'claimed' AND d.attempts = o.attempts
        RETURNING d.campaign_id, d.subscriber_id
    )
    SELECT true AS recorded, campaign_id, subscriber_id FROM recorded
    UNION ALL
    SELECT false, campaign_id, subscriber_id FROM marked
    """
)

# Giving up on one exhausted delivery, in one statement (it is off the hot path: one per advisory).
# Shaped like the claim's decision so both agree on who may settle a row:
# - no row (never claimed: e.g. the handler crashed before its claim committed) → inserted `failed`;
# - `retry`, or `claimed` whose lease ran out → `failed`: it never went out and will not be tried again;
# - `sending` whose lease ran out → `unknown`: its mailer died mid-send, the mail may be out (§6 rule 3);
# - terminal rows, and `sending` under a live lease (another replica is sending a duplicate copy and
#   will record and report the outcome itself), are left alone: RETURNING yields no row.
_GIVE_UP = sa.text(
    """
    INSERT INTO deliveries AS d
        (campaign_id, subscriber_id, account_id, email, status, attempts, smtp_reply, updated_at)
    VALUES (:campaign_id, :subscriber_id, :account_id, :email, 'failed', 0, :reason, now())
    ON CONFLICT (campaign_id, subscriber_id) DO UPDATE SET
        status = CASE WHEN d.status = 'sending' THEN 'unknown' ELSE 'failed' END,
        smtp_reply = CASE WHEN d.status = 'sending' THEN :unknown_reason ELSE excluded.smtp_reply END,
        lease_until = NULL,
        updated_at = now()
    WHERE d.status = 'retry' OR (d.status IN ('claimed', 'sending') AND d.lease_until < now())
    RETURNING d.status
    """
)


class SqlDeliveryLedger:
    def __init__(self, session: AsyncSession, on_outbox_written: Callable[[], None] | None = None):
        self.session = session
        # Told when a statement staged events in the outbox itself (the relay is woken on commit).
        self._on_outbox_written = on_outbox_written

    async def claim(self, requests: Sequence[ClaimRequest], lease_seconds: float) -> list[Claim]:
        """Claim each (distinct) key of a batch; one Claim per request, in no particular order."""
        if not requests:
            return []
        result = await self.session.execute(
            _CLAIM,
            {
                "campaign_ids": [r.key.campaign_id for r in requests],
                "subscriber_ids": [r.key.subscriber_id for r in requests],
                "account_ids": [r.account_id for r in requests],
                "emails": [r.email for r in requests],
                "message_ids": [r.message_id for r in requests],
                "rounds": [r.round for r in requests],
                "lease_seconds": lease_seconds,
                "unknown_reason": OUTCOME_UNKNOWN_REASON,
            },
        )
        return [
            Claim(
                key=DeliveryKey(row.campaign_id, row.subscriber_id),
                state=claim_state(Status(row.status) if row.status else None, row.changed),
                attempts=row.attempts,
                lease_remaining=row.lease_remaining,
            )
            for row in result
        ]

    async def extend_claims(self, claims: Sequence[HeldClaim], lease_seconds: float) -> None:
        if claims:
            await self.session.execute(_EXTEND_CLAIMS, {**_claim_arrays(claims), "lease_seconds": lease_seconds})

    async def settle_wave(
        self, outcomes: Sequence[RecordedOutcome], to_mark: Sequence[HeldClaim], lease_seconds: float
    ) -> SettledWave:
        """Record `outcomes` (staging each recorded one's report in the outbox) and move `to_mark` to
        `sending`, in one statement; which keys were recorded and marked (still held by our claim)."""
        if not outcomes and not to_mark:
            return SettledWave(set(), set())
        reports = [(o.key, o.report) for o in outcomes if isinstance(o.report, tuple)]
        delivered = [(o.key, o.report) for o in outcomes if isinstance(o.report, DeliveredReport)]
        together = _deliveries_succeeded(report for _, report in delivered)
        marks = _claim_arrays(to_mark)
        result = await self.session.execute(
            _SETTLE_WAVE,
            {
                "campaign_ids": [o.key.campaign_id for o in outcomes],
                "subscriber_ids": [o.key.subscriber_id for o in outcomes],
                "attempts": [o.attempts for o in outcomes],
                "statuses": [o.outcome.status.value for o in outcomes],
                "smtp_codes": [o.outcome.smtp_code for o in outcomes],
                "smtp_replies": [o.outcome.smtp_reply or o.outcome.reason for o in outcomes],
                "report_campaign_ids": [key.campaign_id for key, _ in reports],
                "report_subscriber_ids": [key.subscriber_id for key, _ in reports],
                **OutboxArrays.params([report for _, report in reports]),
                "deliveries": json.dumps(
                    [
                        {
                            "campaign_id": key.campaign_id,
                            "subscriber_id": key.subscriber_id,
                            "delivery": report.delivery.model_dump(mode="json"),
                        }
                        for key, report in delivered
                    ]
                ),
                "together_campaign_ids": [event.campaign_id for event, _ in together],
                **OutboxArrays.params(together, "together"),
                "mark_campaign_ids": marks["campaign_ids"],
                "mark_subscriber_ids": marks["subscriber_ids"],
                "mark_attempts": marks["attempts"],
                "lease_seconds": lease_seconds,
            },
        )
        settled = SettledWave(set(), set())
        for row in result:
            key = DeliveryKey(row.campaign_id, row.subscriber_id)
            (settled.recorded if row.recorded else settled.marked).add(key)
        if (reports or delivered) and self._on_outbox_written is not None:
            self._on_outbox_written()
        return settled

    async def give_up(self, request: GiveUp) -> Status | None:
        """Settle an exhausted delivery; return the status written (FAILED or UNKNOWN), or None when
        the row was terminal or is held by a live lease and so was left alone."""
        result = await self.session.execute(
            _GIVE_UP,
            {
                "campaign_id": request.key.campaign_id,
                "subscriber_id": request.key.subscriber_id,
                "account_id": request.account_id,
                "email": request.email,
                "reason": request.reason,
                "unknown_reason": OUTCOME_UNKNOWN_REASON,
            },
        )
        status = result.scalar_one_or_none()
        return Status(status) if status is not None else None


def _deliveries_succeeded(reports: Iterable[DeliveredReport]) -> list[tuple[DeliveriesSucceeded, str]]:
    """One DeliveriesSucceeded per campaign, with no deliveries yet: the statement adds those it records."""
    accounts = {report.campaign_id: report.account_id for report in reports}
    return [
        (
            DeliveriesSucceeded(account_id=account, campaign_id=campaign, deliveries=()),
            subjects.MAIL_RESULT_SUCCEEDED_MANY,
        )
        for campaign, account in accounts.items()
    ]


def _claim_arrays(claims: Sequence[HeldClaim]) -> dict[str, list[str] | list[int]]:
    return {
        "campaign_ids": [c.key.campaign_id for c in claims],
        "subscriber_ids": [c.key.subscriber_id for c in claims],
        "attempts": [c.attempts for c in claims],
    }
