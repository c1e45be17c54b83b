"""The schema head every command checks is read from the revision files without Alembic; it must
be the head Alembic itself finds, and anything but a straight line is left to Alembic."""

from __future__ import annotations

from pathlib import Path

import pytest

import migrations
from migrations import alembic_head, current_head


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert current_head() == alembic_head()
    assert current_head() is not None


def _revision(folder: Path, name: str, revision: str, down: str | None) -> None:
    (folder / f"{name}.py").write_text(
        f'revision = "{revision}"\ndown_revision = {down!r}\nbranch_labels = None\n', encoding="utf-8"
    )


def test_two_heads_or_a_merge_are_left_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "versions").mkdir()
    _revision(tmp_path / "versions", "a", "a1", None)
    _revision(tmp_path / "versions", "b", "b1", "a1")
    monkeypatch.setattr(migrations, "HERE", tmp_path)
    asked: list[bool] = []
    monkeypatch.setattr(migrations, "alembic_head", lambda: asked.append(True) or "alembic says")
    assert current_head() == "b1" and not asked
    _revision(tmp_path / "versions", "c", "c1", "a1")  # a second branch from a1: two heads
    assert current_head() == "alembic says"
    (tmp_path / "versions" / "d.py").write_text('revision = "d1"\ndown_revision = ("b1", "c1")\n')
    assert current_head() == "alembic says"
