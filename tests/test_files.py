"""Safe writes: a failed write leaves the old file and no temporary one behind; an output
folder that cannot be written is reported before any work starts."""
import os
import signal
import stat
import time

import pytest

from rechub_mini import DataError, files
from rechub_mini.files import Terminated, prepare_folder, replace_when_done, stop_on_sigterm


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("old", encoding="utf-8")

    with pytest.raises(OSError, match="disk full"):
        with replace_when_done([path]) as temporary:
            temporary[path].write_text("half of the new", encoding="utf-8")
            raise OSError("disk full")
    assert path.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["meta.json"]


def test_a_written_file_replaces_the_old_one_and_is_readable_by_all(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("old", encoding="utf-8")
    with replace_when_done([path]) as temporary:
        temporary[path].write_text("new", encoding="utf-8")
    assert path.read_text(encoding="utf-8") == "new" and os.listdir(tmp_path) == ["meta.json"]
    if os.name == "posix":  # a temporary file is created owner-only; the result is not
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_missing_folder_is_created_and_left_empty(tmp_path):
    folder = prepare_folder(tmp_path / "a" / "b", "the output folder")
    assert folder.is_dir() and os.listdir(folder) == []  # the probe file is gone


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions, which root ignores")
def test_a_folder_without_write_permission_is_not_writable(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(DataError, match=r"'.*read_only' is not writable \(Permission denied"):
            prepare_folder(folder, "the output folder")
    finally:
        folder.chmod(0o700)  # so that pytest can remove it


def test_a_read_only_disk_is_not_writable(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "TemporaryFile", refuse)
    with pytest.raises(DataError, match=r"output folder '.*ro' is not writable \(Read-only file "
                                        r"system\); give a folder you can write to"):
        prepare_folder(tmp_path / "ro", "the output folder")
    assert (tmp_path / "ro").is_dir()  # created, then found unwritable


def test_files_written_together_are_all_kept_old_when_one_fails(tmp_path):
    names = ("a.csv", "b.csv", "meta.json")
    paths = [tmp_path / name for name in names]
    for path in paths:
        path.write_text(f"old {path.name}", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        with replace_when_done(paths) as temporary:
            for path in paths[:2]:
                temporary[path].write_text(f"new {path.name}", encoding="utf-8")
            raise KeyboardInterrupt  # Ctrl-C while the last file is written
    assert sorted(p.name for p in tmp_path.iterdir()) == list(names)
    assert [p.read_text(encoding="utf-8") for p in paths] == [f"old {n}" for n in names]
    with replace_when_done(paths) as temporary:
        for path in paths:
            temporary[path].write_text(f"new {path.name}", encoding="utf-8")
    assert [p.read_text(encoding="utf-8") for p in paths] == [f"new {n}" for n in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == list(names)


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler during the test. A Python started with Ctrl-C ignored (a
    background job of a non-interactive shell, some CI runners) has none, and then
    replace_when_done rightly leaves the ignored Ctrl-C alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_ctrl_c_or_sigterm_while_renaming_waits_until_every_file_is_in_place(
        tmp_path, monkeypatch, python_ctrl_c, stop):
    """Ctrl-C, or SIGTERM under stop_on_sigterm (the command line), during the renames stops
    the program only once every file is in place."""
    paths = [tmp_path / name for name in ("a.csv", "b.csv", "meta.json")]
    for path in paths:
        path.write_text("old", encoding="utf-8")
    replace = os.replace
    calls = []

    def signal_during_the_first_rename(source, target):
        calls.append(target)
        if len(calls) == 1:
            signal.raise_signal(getattr(signal, stop))  # what Ctrl-C or kill delivers there
        replace(source, target)

    monkeypatch.setattr(files.os, "replace", signal_during_the_first_rename)
    with pytest.raises(Terminated if stop == "SIGTERM" else KeyboardInterrupt), \
            stop_on_sigterm():
        with replace_when_done(paths) as temporary:
            for path in paths:
                temporary[path].write_text("new", encoding="utf-8")
    assert calls == paths  # the signal came after the first rename and stopped none
    assert [p.read_text(encoding="utf-8") for p in paths] == ["new"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "meta.json"]


def test_a_sigterm_under_stop_on_sigterm_removes_the_temporary_files(tmp_path):
    """kill, timeout and docker stop send SIGTERM: the command line then stops as on Ctrl-C
    (Terminated is a KeyboardInterrupt) instead of ending with the temporary files left."""
    before = signal.getsignal(signal.SIGTERM)
    paths = [tmp_path / name for name in ("a.csv", "b.csv")]
    with pytest.raises(Terminated), stop_on_sigterm():
        with replace_when_done(paths) as temporary:
            temporary[paths[0]].write_text("new", encoding="utf-8")
            signal.raise_signal(signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == before  # restored


def test_every_file_is_flushed_to_disk_before_it_is_renamed(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append("fsync") or fsync(fd))
    monkeypatch.setattr(files.os, "replace",
                        lambda a, b: events.append("replace") or replace(a, b))
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    with replace_when_done(paths) as temporary:
        for path in paths:
            temporary[path].write_text("new", encoding="utf-8")
    assert events == ["fsync", "fsync", "replace", "replace"]


def test_a_held_ctrl_c_is_not_lost_when_a_rename_fails(tmp_path, monkeypatch, python_ctrl_c):
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    replace = os.replace
    calls = []

    def ctrl_c_then_a_full_disk(source, target):
        calls.append(target)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGINT)
            return replace(source, target)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", ctrl_c_then_a_full_disk)
    with pytest.raises(KeyboardInterrupt) as stopped:
        with replace_when_done(paths) as temporary:
            for path in paths:
                temporary[path].write_text("new", encoding="utf-8")
    assert isinstance(stopped.value.__context__, OSError)  # the failure is not hidden either
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_an_ignored_ctrl_c_stays_ignored(tmp_path, monkeypatch):
    replace = os.replace

    def ctrl_c_during_the_rename(source, target):
        signal.raise_signal(signal.SIGINT)
        replace(source, target)

    monkeypatch.setattr(files.os, "replace", ctrl_c_during_the_rename)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with replace_when_done([tmp_path / "a.csv"]) as temporary:
            temporary[tmp_path / "a.csv"].write_text("new", encoding="utf-8")
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (tmp_path / "a.csv").read_text(encoding="utf-8") == "new"


def test_paths_are_looked_up_as_given_and_none_may_repeat(tmp_path):
    name = str(tmp_path / "a.csv")
    with replace_when_done([name]) as temporary:
        temporary[name].write_text("new", encoding="utf-8")
    assert (tmp_path / "a.csv").read_text(encoding="utf-8") == "new"
    with pytest.raises(ValueError, match="the same file twice"):
        with replace_when_done([name, tmp_path / "a.csv"]):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]  # no temporary file left


def test_temporary_files_left_by_a_killed_writer_are_named_not_removed(tmp_path):
    """kill -9 leaves the hidden temporary file behind; the next write of the same file says
    so, with the size, and keeps it. A temporary file written to recently, or one of another
    file, is not named: its writer may be at work (another rank, a second run)."""
    target = tmp_path / "a[1].csv"  # glob characters in the name are matched as they are
    left = tmp_path / ".a[1].csv.x7q2ab_9.tmp"  # mkstemp's 8 random characters
    left.write_bytes(b"0" * 3 * 2**20)
    fresh = tmp_path / ".a[1].csv.k2k2k2k2.tmp"
    fresh.write_text("a writer at work", encoding="utf-8")
    others = [tmp_path / ".b.csv.x7q2ab_9.tmp", tmp_path / ".a[1].csv.x7q2ab_9.part",
              tmp_path / ".a[1].csv.npy.cache.x7q2ab_9.tmp"]  # another file's, not ours
    for path in [left, *others]:
        path.write_text("0" * 3 * 2**20 if path == left else "not ours", encoding="utf-8")
        old = time.time() - files.LEFTOVER_AFTER_S - 5
        os.utime(path, (old, old))
    with pytest.warns(UserWarning, match=r"1 hidden temporary file\(s\), 3\.0 MB.*"
                                         r"\.a\[1\]\.csv\.x7q2ab_9\.tmp\. Delete them unless"):
        with replace_when_done([target]) as temporary:
            temporary[target].write_text("new", encoding="utf-8")
    assert left.exists() and fresh.exists() and target.read_text(encoding="utf-8") == "new"
    assert files.leftover_temporary_files([target]) == [left]
    assert files.leftover_temporary_files([tmp_path / "b.csv"]) == [others[0]]


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard links", "no hard links"])
def test_keep_existing_never_writes_over_a_file_that_appeared(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # FAT and some network shares: the check before a rename stands in
        def no_links(source, target):
            raise OSError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_links)
    new = tmp_path / "new.csv"
    with replace_when_done([new], keep_existing=True) as temporary:
        temporary[new].write_text("ours", encoding="utf-8")
    assert new.read_text(encoding="utf-8") == "ours"
    taken = tmp_path / "taken.csv"
    with pytest.raises(DataError, match="appeared while this was running; it is kept"):
        with replace_when_done([taken], keep_existing=True) as temporary:
            temporary[taken].write_text("ours", encoding="utf-8")
            taken.write_text("theirs", encoding="utf-8")
    assert taken.read_text(encoding="utf-8") == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "taken.csv"]


def test_keep_existing_takes_one_file_and_a_link_to_nowhere_is_in_the_way(tmp_path):
    with pytest.raises(ValueError, match="keep_existing takes one file"):
        with replace_when_done([tmp_path / "a", tmp_path / "b"], keep_existing=True):
            pass
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match="already exists"):
        files.check_new_file(tmp_path / "dangling", "--out")


def test_a_file_in_place_is_a_success_even_if_its_temporary_name_cannot_be_removed(
        tmp_path, monkeypatch):
    """With a hard link the finished file has two names until the temporary one goes; if that
    removal fails (a virus scanner holding it on Windows), the file is still written."""
    real_unlink = type(tmp_path).unlink

    def scanner_holds_it(self, missing_ok=False):
        if self.name.endswith(".tmp"):
            raise PermissionError(32, "The process cannot access the file")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(type(tmp_path), "unlink", scanner_holds_it)
    new = tmp_path / "new.csv"
    with replace_when_done([new], keep_existing=True) as temporary:
        temporary[new].write_text("ours", encoding="utf-8")
    assert new.read_text(encoding="utf-8") == "ours"
