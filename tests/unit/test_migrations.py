"""Migration files are well named and ordered."""

import pytest

from stores.db import MIGRATIONS_DIR, discover


def test_shipped_migrations_are_numbered_from_one():
    found = discover()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.path.parent == MIGRATIONS_DIR for m in found)


def test_bad_names_and_duplicates_are_refused(tmp_path):
    (tmp_path / "1_x.sql").write_text("")
    with pytest.raises(ValueError, match="NNNN_name"):
        discover(tmp_path)
    (tmp_path / "1_x.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(ValueError, match="share a version"):
        discover(tmp_path)
