"""Tests for seq2seq_keras.data.corpora: corpus parsing, splitting, downloads (no network); the tf.data pipeline is
tests/data/test_batching.py."""

from __future__ import annotations

import hashlib
import sys
import types
import urllib.request
from pathlib import Path

import pytest

from seq2seq_keras.data import corpora as data
from seq2seq_keras.data.corpora import CorpusFormatError, SentencePairs, load_corpus, load_tatoeba, split_pairs


def write(tmp_path: Path, relative: str, content: bytes | str) -> Path:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# --------------------------------------------------------------------------- parsing
def test_two_columns_translate_other_to_english_by_default(tmp_path):
    path = write(tmp_path, "spa-eng/spa.txt", "Go.\tVe.\nHi.\tHola.\n")
    pairs = load_tatoeba(path)
    assert pairs.source == ("Ve.", "Hola.")
    assert pairs.target == ("Go.", "Hi.")
    assert (pairs.source_lang, pairs.target_lang, pairs.name, pairs.skipped) == ("es", "en", "spa-eng", 0)
    assert pairs.alignments is None
    assert pairs[1] == ("Hola.", "Hi.")


def test_three_columns_attribution_ignored_and_english_source(tmp_path):
    path = write(tmp_path, "kor.txt", "Go.\t가.\tCC-BY 2.0 (France) #1\nHi.\t안녕.\tCC-BY #2\n")
    pairs = load_tatoeba(path, source="english")
    assert pairs.source == ("Go.", "Hi.")
    assert pairs.target == ("가.", "안녕.")
    assert (pairs.source_lang, pairs.target_lang) == ("en", "ko")


def test_language_inference_and_override(tmp_path):
    unknown = write(tmp_path, "corpus.txt", "Go.\tVa.\n")
    assert load_tatoeba(unknown).source_lang == "und"
    assert load_tatoeba(unknown, source_lang="fr").source_lang == "fr"
    by_folder = write(tmp_path, "fra-eng/pairs.txt", "Go.\tVa.\n")
    assert load_tatoeba(by_folder).source_lang == "fr"
    assert load_tatoeba(by_folder, target_lang="en-GB").target_lang == "en-GB"


def test_crlf_bom_and_trailing_blank_lines(tmp_path):
    path = write(tmp_path, "spa.txt", b"\xef\xbb\xbfGo.\tVe.\r\nHi.\tHola.\r\n\r\n  \n")
    pairs = load_tatoeba(path)
    assert pairs.target == ("Go.", "Hi.")  # no BOM glued to the first English word
    assert pairs.source == ("Ve.", "Hola.")  # no \r at the end
    assert pairs.skipped == 0


MALFORMED = {
    "one column": b"Just English.",
    "four columns": b"Go.\tVe.\tattribution\textra",
    "empty translation": b"Go.\t   ",
    "empty english": b"\tVe.",
    "invalid utf-8": b"Go.\tV\xffe.",
    "blank line in the middle": b"",
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_line_names_file_and_line(tmp_path, kind):
    path = write(tmp_path, "spa-eng/spa.txt", b"Go.\tVe.\nHi.\tHola.\n" + MALFORMED[kind] + b"\nRun!\tCorre.\n")
    with pytest.raises(CorpusFormatError) as info:
        load_tatoeba(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "errors='skip'" in message
    assert info.value.line_number == 3
    assert isinstance(info.value, ValueError)


def test_skip_counts_malformed_lines(tmp_path):
    body = b"Go.\tVe.\n" + b"\n".join(MALFORMED.values()) + b"\nRun!\tCorre.\tattr\n"
    path = write(tmp_path, "spa.txt", body)
    pairs = load_tatoeba(path, errors="skip")
    assert pairs.source == ("Ve.", "Corre.")
    assert pairs.skipped == len(MALFORMED)


def test_bad_arguments_are_explained(tmp_path):
    path = write(tmp_path, "spa.txt", "Go.\tVe.\n")
    with pytest.raises(ValueError, match="errors="):
        load_tatoeba(path, errors="ignore")
    with pytest.raises(ValueError, match="source="):
        load_tatoeba(path, source="spanish")
    with pytest.raises(FileNotFoundError, match="download_anki"):
        load_tatoeba(tmp_path / "missing.txt")


# --------------------------------------------------------------------------- SentencePairs
def test_slicing_and_subset_keep_alignments_in_step():
    pairs = SentencePairs(
        source=["a", "b", "c"],
        target=["A", "B", "C"],
        source_lang="ko",
        target_lang="en",
        name="t",
        alignments=[((0, 0),), ((0, 1),), ((1, 0),)],
    )
    assert isinstance(pairs.source, tuple) and len(pairs) == 3
    head = pairs[:2]
    assert (head.source, head.target, head.alignments) == (("a", "b"), ("A", "B"), (((0, 0),), ((0, 1),)))
    picked = pairs.subset([2, 0])
    assert (picked.source, picked.alignments) == (("c", "a"), (((1, 0),), ((0, 0),)))
    assert list(pairs) == [("a", "A"), ("b", "B"), ("c", "C")]
    with pytest.raises(ValueError, match="one to one"):
        SentencePairs(source=["a"], target=[], source_lang="ko", target_lang="en")
    with pytest.raises(ValueError, match="alignments"):
        SentencePairs(source=["a"], target=["A"], source_lang="ko", target_lang="en", alignments=[])
    with pytest.raises(AttributeError):
        pairs.name = "other"  # frozen


# --------------------------------------------------------------------------- split
def sha1_mod(text: str, modulus: int = 50) -> int:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % modulus


@pytest.fixture(scope="module")
def pairs_with_duplicates() -> SentencePairs:
    # 6,000 distinct English sentences, each with 1-3 different translations.
    source, target = [], []
    for i in range(6000):
        for k in range(1 + i % 3):
            source.append(f"frase {i} versión {k}")
            target.append(f"sentence {i}")
    return SentencePairs(source=source, target=target, source_lang="es", target_lang="en", name="dup")


def test_split_is_disjoint_on_english_and_follows_sha1(pairs_with_duplicates):
    train, validation, test = split_pairs(pairs_with_duplicates)
    sides = [set(split.target) for split in (train, validation, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(train) + len(validation) + len(test) == len(pairs_with_duplicates)
    assert all(sha1_mod(e) == 0 for e in test.target)
    assert all(sha1_mod(e) == 1 for e in validation.target)
    assert all(sha1_mod(e) > 1 for e in train.target)
    assert (train.name, test.name, test.source_lang) == ("dup/train", "dup/test", "es")
    n = len(pairs_with_duplicates)
    assert 0.01 < len(test) / n < 0.03 and 0.01 < len(validation) / n < 0.03
    again = split_pairs(pairs_with_duplicates)
    assert [s.source for s in again] == [train.source, validation.source, test.source]


def test_split_hashes_english_in_either_direction_and_source_on_request(pairs_with_duplicates):
    p = pairs_with_duplicates
    reverse = SentencePairs(source=p.target, target=p.source, source_lang="en", target_lang="es")
    assert split_pairs(reverse)[2].source == split_pairs(p)[2].target
    by_source = split_pairs(p, key="source")[2]
    assert by_source.source and all(sha1_mod(s) == 0 for s in by_source.source)
    assert by_source.source != split_pairs(p)[2].source
    with pytest.raises(ValueError, match="English"):
        split_pairs(SentencePairs(source=["a"], target=["b"], source_lang="ko", target_lang="es"))
    with pytest.raises(ValueError, match="modulus"):
        split_pairs(p, modulus=2)


# --------------------------------------------------------------------------- downloads (no network)
def test_anki_urls():
    assert data.anki_url("spa") == (
        "https://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",
        "spa-eng.zip",
        "spa.txt",
    )
    assert data.anki_url("es") == data.anki_url("spa")
    url, fname, txt = data.anki_url("kor")
    assert (url, txt) == ("https://www.manythings.org/anki/kor-eng.zip", "kor.txt")
    assert fname.endswith(".zip") and fname != "spa-eng.zip"
    assert data.anki_url("spa", host="manythings")[0] == "https://www.manythings.org/anki/spa-eng.zip"
    with pytest.raises(ValueError, match="manythings"):
        data.anki_url("kor", host="tensorflow")
    with pytest.raises(ValueError, match="3-letter"):
        data.anki_url("../x")


@pytest.mark.parametrize("fails", [False, True])
def test_download_anki_sends_browser_user_agent_and_restores_opener(tmp_path, monkeypatch, fails):
    import keras

    before = urllib.request.build_opener()
    urllib.request.install_opener(before)
    seen = {}

    def fake_get_file(fname, origin, extract, cache_dir, force_download):
        seen.update(fname=fname, origin=origin, extract=extract, headers=dict(urllib.request._opener.addheaders))
        if fails:
            raise RuntimeError("offline")
        folder = tmp_path / "kor-eng_extracted"
        write(folder, "nested/kor.txt", "Go.\t가.\tattr\n")
        return str(folder)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    try:
        if fails:
            with pytest.raises(RuntimeError):
                data.download_anki("kor")
        else:
            path = data.download_anki("kor")
            assert path.name == "kor.txt" and load_tatoeba(path).source == ("가.",)
        assert seen["origin"] == "https://www.manythings.org/anki/kor-eng.zip" and seen["extract"] is True
        assert "Mozilla" in seen["headers"]["User-Agent"]
        assert urllib.request._opener is before
    finally:
        urllib.request.install_opener(None)


# --------------------------------------------------------------------------- corpora by name
def test_shared_data_dir_env_and_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_KERAS_DATA", str(tmp_path / "elsewhere"))
    assert data.shared_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("SEQ2SEQ_KERAS_DATA")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert data.shared_data_dir() == (tmp_path / "shared" / "data").resolve()


def test_shared_data_dir_is_found_beside_the_checkout_from_any_folder(tmp_path, monkeypatch):
    """From a folder that is not the checkout's root (a notebook runs in notebooks/), the corpora beside the
    checkout are still found: the package's own location names the checkout."""
    from seq2seq_keras.data import corpora

    checkout = Path(corpora.__file__).resolve().parents[2]
    assert (checkout / "seq2seq_keras" / "data" / "corpora.py").is_file()
    monkeypatch.delenv("SEQ2SEQ_KERAS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    expected = checkout / ".." / "shared" / "data"
    found = data.shared_data_dir()
    assert (found and found.resolve()) == (expected.resolve() if expected.is_dir() else None)


def test_load_corpus_by_name_path_and_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_KERAS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"download_anki\('spa'\).*SEQ2SEQ_KERAS_DATA"):
        load_corpus("spa-eng")
    path = write(tmp_path, "spa-eng/spa.txt", "Go.\tVe.\nHi.\tHola.\nRun!\tCorre.\n")
    assert load_corpus("spa-eng", limit=2).source == ("Ve.", "Hola.")
    assert load_corpus(path).target == ("Go.", "Hi.", "Run!")
    assert load_corpus(str(path), source="english").source == ("Go.", "Hi.", "Run!")
    with pytest.raises(FileNotFoundError, match="known corpus"):
        load_corpus("no-such-corpus")


def test_builtin_corpus_maps_fields_and_alignments(monkeypatch):
    calls = []

    def generate_pairs(n=30000, seed=0, max_clauses=3):
        calls.append((n, seed))
        pair = types.SimpleNamespace
        return [pair(source=f"한국어 {i}", target=f"english {i}", alignment=((0, 0), (1, 1))) for i in range(n)]

    fake = types.ModuleType("seq2seq_keras.data.builtin_ko_en")
    fake.generate_pairs = generate_pairs
    monkeypatch.setitem(sys.modules, "seq2seq_keras.data.builtin_ko_en", fake)
    monkeypatch.setattr(sys.modules["seq2seq_keras.data"], "builtin_ko_en", fake, raising=False)
    pairs = load_corpus("builtin-ko-en", limit=5, seed=7)
    assert calls == [(5, 7)]
    assert (len(pairs), pairs.source_lang, pairs.target_lang, pairs.name) == (5, "ko", "en", "builtin-ko-en")
    assert pairs[3] == ("한국어 3", "english 3") and len(pairs.alignments) == 5
    assert load_corpus("builtin-ko-en", limit=2).alignments == (((0, 0), (1, 1)),) * 2
    flipped = load_corpus("builtin-ko-en", limit=1, source="english")  # English -> Korean
    assert (flipped.source, flipped.target, flipped.source_lang) == (("english 0",), ("한국어 0",), "en")
    assert flipped.alignments == (((0, 0), (1, 1)),)
    assert load_corpus("builtin-ko-en", limit=3)[1:].alignments == (((0, 0), (1, 1)),) * 2


def test_builtin_corpus_real_generator():
    from seq2seq_keras.data.builtin_ko_en import generate_pairs

    pairs = load_corpus("builtin-ko-en", limit=20, seed=1)
    assert len(pairs) == 20 and pairs.alignments is not None and len(pairs.alignments) == 20
    assert all(pairs.source) and all(pairs.target)
    assert load_corpus("builtin-ko-en", limit=20, seed=1) == pairs
    generated = generate_pairs(n=20, seed=1)
    assert list(zip(pairs.source, pairs.target)) == [(p.source, p.target) for p in generated]
    assert [list(a) for a in pairs.alignments] == [list(p.alignment) for p in generated]


# --------------------------------------------------------------------------- real corpora
def shared_file(relative: str) -> Path:
    folder = data.shared_data_dir()
    path = None if folder is None else folder / relative
    if path is None or not path.is_file():
        shown = path or f"../shared/data/{relative}"
        pytest.skip(f"shared corpus {shown} not found (set SEQ2SEQ_KERAS_DATA or add ../shared/data)")
    return path


@pytest.mark.shared_data
def test_spa_eng_loads_and_splits_like_tensorflow():
    shared_file("spa-eng/spa.txt")
    pairs = load_corpus("spa-eng")
    assert (len(pairs), pairs.skipped, pairs.source_lang, pairs.target_lang) == (118_964, 0, "es", "en")
    assert pairs[0] == ("Ve.", "Go.")
    assert len(set(pairs.target)) == 102_904  # 102,902 when counted case-insensitively
    train, validation, test = split_pairs(pairs)
    assert (len(train), len(validation), len(test)) == (114_151, 2_325, 2_488)


@pytest.mark.shared_data
def test_kor_eng_loads():
    shared_file("kor-eng/kor.txt")
    pairs = load_corpus("kor-eng")
    assert (len(pairs), pairs.skipped, pairs.source_lang, pairs.target_lang) == (5_749, 0, "ko", "en")
    assert pairs[0] == ("가.", "Go.")
