"""The campaign service's use cases, by topic: `campaigns` (the API: create, edit, send, ...) and
`outcomes` (driven by events: fan-out totals, delivery outcomes)."""
