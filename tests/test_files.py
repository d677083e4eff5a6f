"""Safe writes: a failed write leaves the old file and no temporary one behind."""
import os
import stat

import pytest

from rechub_mini.files import write_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("old")

    def half_then_fail(temporary):
        temporary.write_text("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["meta.json"]


def test_a_written_file_replaces_the_old_one_and_is_readable_by_all(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("old")
    write_atomically(path, lambda temporary: temporary.write_text("new"))
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["meta.json"]
    if os.name == "posix":  # a temporary file is created owner-only; the result is not
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
