"""The bundled sample is exactly what its recorded command generates, and unchanged."""
import hashlib
import json
import shlex

from rechub_mini.cli import main


def read_checksums(folder):
    lines = (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split() for line in lines)}


def test_checksums_match(sample_dir):
    sums = read_checksums(sample_dir)
    assert set(sums) == {"ali_ccp_train_sample.csv", "ali_ccp_val_sample.csv",
                         "ali_ccp_test_sample.csv", "meta.json"}
    for name, digest in sums.items():
        assert hashlib.sha256((sample_dir / name).read_bytes()).hexdigest() == digest, name


def test_recorded_command_regenerates_the_files_byte_for_byte(sample_dir, tmp_path, capsys):
    meta = json.loads((sample_dir / "meta.json").read_text(encoding="utf-8"))
    words = shlex.split(meta["command"])
    assert words[:4] == ["python", "-m", "rechub_mini", "synth"]
    args = [str(tmp_path) if w == "DIR" else w for w in words[3:]]
    assert main(args) == 0
    for name in read_checksums(sample_dir):
        assert (tmp_path / name).read_bytes() == (sample_dir / name).read_bytes(), name


def test_readme_records_the_command_and_says_the_data_are_synthetic(sample_dir):
    readme = (sample_dir / "README.md").read_text(encoding="utf-8")
    meta = json.loads((sample_dir / "meta.json").read_text(encoding="utf-8"))
    assert meta["command"].replace(" DIR", " data/ali-ccp") in readme
    assert "synthetic" in readme.lower()
    assert sum(p.stat().st_size for p in sample_dir.iterdir() if p.is_file()) < 8 * 1024 * 1024
