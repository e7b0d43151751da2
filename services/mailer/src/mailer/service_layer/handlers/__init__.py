"""The mailer's use cases: `delivery` (a batch of DeliverEmail, from claim to outcome) and
`exhausted` (deliveries JetStream stopped redelivering)."""
