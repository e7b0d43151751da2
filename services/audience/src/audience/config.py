import tempfile
from pathlib import Path

from pydantic import Field

from mailstify_servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    # The largest CSV an import accepts (a million subscribers with a few columns is ~60 MB).
    import_max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    # Where uploads wait on disk for their import job (deleted when it ends). Local to the replica
    # that received the upload, which is the one that runs the job.
    import_spool_dir: Path = Path(tempfile.gettempdir()) / "mailstify-audience-imports"
