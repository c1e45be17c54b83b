"""The council's details for letters, from ``config/council.yaml`` or ``CASELOOP_COUNCIL_FILE``."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from letters.council import Council
from workflow.errors import CaseloopError

DEFAULT_COUNCIL_FILE = Path(__file__).with_name("council.yaml")


def load_council(path: Path) -> Council:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Council.model_validate(data)
    except OSError as exc:
        raise CaseloopError(f"{path}: cannot read the council's details ({exc.strerror})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CaseloopError(f"{path.name}: {where}: {first['msg']}") from exc
