"""Loading the policy file named by the settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.settings import Settings
from workflow.errors import PolicyError
from workflow.policy import Policy, parse_policy


def load_policy(settings: Settings) -> Policy:
    return load_policy_file(settings.policy_file)


def load_policy_file(path: Path) -> Policy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from exc
    return parse_policy(data, source=path.name)
