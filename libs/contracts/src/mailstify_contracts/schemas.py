"""Export each event's JSON Schema to `libs/contracts/schemas/` (committed).

    uv run python -m mailstify_contracts.schemas   # rewrite after an intended contract change
"""

from __future__ import annotations

import json
from pathlib import Path

from .events import ALL_EVENTS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def schema_documents() -> dict[str, str]:
    """File name → canonical JSON text, for every event."""
    return {
        f"{event.wire_type()}.v{event.model_fields['version'].default}.json": json.dumps(
            event.model_json_schema(mode="serialization"), indent=2, sort_keys=True
        )
        + "\n"
        for event in ALL_EVENTS
    }


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in schema_documents().items():
        (SCHEMA_DIR / name).write_text(text)
        print(f"wrote {SCHEMA_DIR / name}")


if __name__ == "__main__":
    main()
