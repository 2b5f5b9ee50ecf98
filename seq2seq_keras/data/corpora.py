"""Parallel corpora: loading and splitting (the ``tf.data`` pipeline is :mod:`seq2seq_keras.data.batching`).

Three corpora are known by name (:func:`load_corpus`):

* ``"builtin-ko-en"``: a generated Korean -> English corpus with word alignments
  (:mod:`seq2seq_keras.data.builtin_ko_en`); needs no files.
* ``"spa-eng"``: Tatoeba Spanish/English pairs (118,964 lines), the file used by
  TensorFlow's NMT tutorials.
* ``"kor-eng"``: Tatoeba Korean/English pairs (5,749 lines).

The two Tatoeba files are read from :func:`shared_data_dir` (``../shared/data``
next to the project, or ``$SEQ2SEQ_KERAS_DATA``); elsewhere (e.g. Colab) fetch
them with :func:`download_anki` and pass the returned path to
:func:`load_corpus`. Nothing in this module touches the network unless
:func:`download_anki` is called.

The pipeline, end to end::

    pairs = load_corpus("spa-eng")                  # Spanish -> English
    train, val, test = split_pairs(pairs)           # hash of the English side
    src = TextProcessor.for_language("es").adapt(train.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(train.target)
    ds = make_dataset(train, src, tgt, batch_size=64)
    # ds yields ((source_ids [batch, src_len], target_in [batch, tgt_len]),
    #            target_out [batch, tgt_len]), int32, 0-padded.

:func:`make_dataset` lives in :mod:`seq2seq_keras.data.batching`; the package
(``from seq2seq_keras.data import load_corpus, split_pairs, make_dataset``) offers both
modules' names. This module imports neither TensorFlow nor Keras; :func:`download_anki` imports Keras when called, and
:mod:`seq2seq_keras.data.batching` imports TensorFlow inside its functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CorpusFormatError",
    "SentencePairs",
    "load_tatoeba",
    "anki_url",
    "download_anki",
    "shared_data_dir",
    "load_corpus",
    "split_pairs",
    "KNOWN_CORPORA",
]

#: Names accepted by :func:`load_corpus` besides file paths.
KNOWN_CORPORA = ("builtin-ko-en", "spa-eng", "kor-eng")

#: Default size of the generated ``builtin-ko-en`` corpus.
BUILTIN_DEFAULT_PAIRS = 30_000

#: Tatoeba / manythings.org 3-letter file codes -> ISO 639-1 codes.
ANKI_LANGUAGES = {
    "ara": "ar",
    "ces": "cs",
    "cmn": "zh",
    "dan": "da",
    "deu": "de",
    "ell": "el",
    "fin": "fi",
    "fra": "fr",
    "heb": "he",
    "hin": "hi",
    "hun": "hu",
    "ind": "id",
    "ita": "it",
    "jpn": "ja",
    "kor": "ko",
    "nld": "nl",
    "nob": "nb",
    "pol": "pl",
    "por": "pt",
    "ron": "ro",
    "rus": "ru",
    "spa": "es",
    "swe": "sv",
    "tha": "th",
    "tur": "tr",
    "ukr": "uk",
    "vie": "vi",
}
_ISO1_TO_ANKI = {iso1: code for code, iso1 in ANKI_LANGUAGES.items()}

#: TensorFlow's copy of spa-eng.zip (2018 Tatoeba export; the NMT tutorials' file).
TENSORFLOW_SPA_ENG_URL = "https://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
#: Per-language zips on manythings.org (current Tatoeba exports).
MANYTHINGS_URL = "https://www.manythings.org/anki/{code}-eng.zip"
#: manythings.org answers 403 to urllib's default User-Agent.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)

_UTF8_BOM = b"\xef\xbb\xbf"
_DATA_ENV = "SEQ2SEQ_KERAS_DATA"


class CorpusFormatError(ValueError):
    """A corpus line is not ``English<TAB>Other[<TAB>attribution]``.

    Attributes:
        path: the file.
        line_number: 1-based line number of the offending line.
        reason: what was wrong with the line.
    """

    def __init__(self, path: str | os.PathLike, line_number: int, reason: str):
        self.path = str(path)
        self.line_number = line_number
        self.reason = reason
        super().__init__(
            f"{self.path}, line {line_number}: {reason}. Expected "
            "'English<TAB>Other' or 'English<TAB>Other<TAB>attribution' with both "
            "sentences non-empty and valid UTF-8. Fix the line, or pass "
            "errors='skip' to skip malformed lines (they are counted in .skipped)."
        )


# --------------------------------------------------------------------------- pairs
@dataclasses.dataclass(frozen=True, kw_only=True)
class SentencePairs:
    """An immutable parallel corpus: ``source[i]`` translates to ``target[i]``.

    Attributes:
        source: sentences to translate from.
        target: their translations.
        source_lang, target_lang: ISO 639-1 codes (``"es"``, ``"ko"``, ``"en"``;
            ``"und"`` when unknown).
        name: a label for messages and reports (e.g. ``"spa-eng"``).
        alignments: per-pair word alignments, only for the ``builtin-ko-en``
            corpus; ``None`` otherwise. Kept in step by slicing and :meth:`subset`.
        skipped: malformed lines skipped while loading (``errors="skip"``).
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    source_lang: str
    target_lang: str
    name: str = ""
    alignments: tuple[Any, ...] | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        for field in ("source", "target", "alignments"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, field, tuple(value))
        if len(self.source) != len(self.target):
            raise ValueError(
                f"SentencePairs {self.name!r}: {len(self.source)} source sentences but "
                f"{len(self.target)} target sentences; they must pair up one to one."
            )
        if self.alignments is not None and len(self.alignments) != len(self.source):
            raise ValueError(
                f"SentencePairs {self.name!r}: {len(self.alignments)} alignments for "
                f"{len(self.source)} pairs; pass one alignment per pair or None."
            )

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Iterate over ``(source, target)`` tuples."""
        return zip(self.source, self.target)

    def __getitem__(self, index: int | slice) -> tuple[str, str] | SentencePairs:
        """``pairs[i]`` is a ``(source, target)`` tuple; ``pairs[a:b]`` a SentencePairs."""
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return self.source[index], self.target[index]

    def subset(self, indices: Sequence[int]) -> SentencePairs:
        """The pairs at ``indices`` (in that order), alignments kept in step."""
        indices = list(indices)
        return dataclasses.replace(
            self,
            source=tuple(self.source[i] for i in indices),
            target=tuple(self.target[i] for i in indices),
            alignments=None if self.alignments is None else tuple(self.alignments[i] for i in indices),
        )

    @property
    def english(self) -> tuple[str, ...]:
        """The English side, whichever direction is translated."""
        if self.target_lang == "en":
            return self.target
        if self.source_lang == "en":
            return self.source
        raise ValueError(
            f"SentencePairs {self.name!r} ({self.source_lang} -> {self.target_lang}) has no "
            "English side; use key='source' or key='target' instead of 'english'."
        )


# --------------------------------------------------------------------------- Tatoeba files
def _language_from_path(path: Path) -> str:
    """``.../spa-eng/spa.txt`` -> ``"es"``; ``"und"`` if neither name says."""
    candidates = [path.stem.lower()]
    folder = path.parent.name.lower()
    if folder.endswith("-eng"):
        candidates.append(folder[: -len("-eng")])
    for code in candidates:
        if code in ANKI_LANGUAGES:
            return ANKI_LANGUAGES[code]
        if code in _ISO1_TO_ANKI:
            return code
    return "und"


def _parse_tatoeba_line(raw: bytes) -> tuple[str, str]:
    """One line (no newline) -> ``(english, other)``; ValueError says what is wrong."""
    raw = raw.rstrip(b"\r")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 byte {raw[exc.start : exc.start + 1]!r} at byte {exc.start}") from None
    columns = line.split("\t")
    if len(columns) not in (2, 3):
        preview = line if len(line) <= 60 else line[:57] + "..."
        raise ValueError(f"found {len(columns)} tab-separated column(s) in {preview!r}")
    english, other = columns[0].strip(), columns[1].strip()
    if not english:
        raise ValueError("the English sentence (column 1) is empty")
    if not other:
        raise ValueError("the translation (column 2) is empty")
    return english, other


def load_tatoeba(
    path: str | os.PathLike,
    *,
    source: Literal["other", "english"] = "other",
    errors: Literal["strict", "skip"] = "strict",
    source_lang: str | None = None,
    target_lang: str | None = None,
) -> SentencePairs:
    """Read a Tatoeba / manythings.org Anki file (the TensorFlow NMT tutorials' format).

    Each line is ``English<TAB>Other`` or ``English<TAB>Other<TAB>attribution``
    (the attribution column is ignored). A UTF-8 byte-order mark, trailing ``\\r``
    (CRLF files) and surrounding whitespace of each sentence are removed; blank
    lines at the end of the file are ignored.

    Args:
        path: the ``.txt`` file (e.g. ``spa-eng/spa.txt``).
        source: ``"other"`` translates Other -> English (as the TensorFlow
            tutorial does Spanish -> English); ``"english"`` the reverse.
        errors: ``"strict"`` raises :class:`CorpusFormatError` at the first
            malformed line (wrong column count, empty or whitespace-only side,
            blank line before the end, invalid UTF-8); ``"skip"`` drops such lines
            and counts them in ``.skipped``.
        source_lang, target_lang: override the language codes, which are
            otherwise inferred from the file or folder name (``spa.txt`` or
            ``spa-eng/`` -> ``"es"``; ``"und"`` if unknown) and ``"en"``.

    Returns:
        SentencePairs named after the file's folder (``"spa-eng"``) or stem.

    Raises:
        FileNotFoundError: no such file.
        CorpusFormatError: a malformed line with ``errors="strict"``.
    """
    if source not in ("other", "english"):
        raise ValueError(f"source={source!r}: use 'other' (Other -> English) or 'english' (English -> Other).")
    if errors not in ("strict", "skip"):
        raise ValueError(f"errors={errors!r}: use 'strict' (raise) or 'skip' (drop malformed lines).")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No corpus file at {path}: check the path, or fetch one with download_anki().")
    data = path.read_bytes()
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():  # trailing newline and blank trailing lines
        lines.pop()

    english: list[str] = []
    other: list[str] = []
    skipped = 0
    for number, raw in enumerate(lines, start=1):
        try:
            eng, oth = _parse_tatoeba_line(raw)
        except ValueError as exc:
            if errors == "strict":
                raise CorpusFormatError(path, number, str(exc)) from None
            skipped += 1
            continue
        english.append(eng)
        other.append(oth)

    other_lang = _language_from_path(path)
    if source == "other":
        src, tgt, default_src, default_tgt = other, english, other_lang, "en"
    else:
        src, tgt, default_src, default_tgt = english, other, "en", other_lang
    folder = path.parent.name
    return SentencePairs(
        source=tuple(src),
        target=tuple(tgt),
        source_lang=source_lang or default_src,
        target_lang=target_lang or default_tgt,
        name=folder if folder.endswith("-eng") else path.stem,
        skipped=skipped,
    )


# --------------------------------------------------------------------------- download
def _anki_code(language: str) -> str:
    """``"spa"`` or ``"es"`` -> ``"spa"``; ValueError for anything not a language code."""
    code = language.strip().lower()
    code = _ISO1_TO_ANKI.get(code, code)
    if not re.fullmatch(r"[a-z]{3}", code):
        raise ValueError(
            f"language={language!r} is not a Tatoeba language code: use the 3-letter "
            "code of a manythings.org/anki file (e.g. 'spa', 'kor', 'fra') or a known "
            f"2-letter code ({', '.join(sorted(_ISO1_TO_ANKI))})."
        )
    return code


def anki_url(language: str = "spa", host: Literal["auto", "tensorflow", "manythings"] = "auto") -> tuple[str, str, str]:
    """Where to download a language's zip: ``(url, cache_file_name, txt_name)``.

    ``host="auto"`` uses TensorFlow's copy for Spanish (the exact file of the
    NMT tutorials, also used by ``../shared/data``) and manythings.org for every
    other language. TensorFlow only hosts Spanish.
    """
    code = _anki_code(language)
    if host == "auto":
        host = "tensorflow" if code == "spa" else "manythings"
    if host == "tensorflow":
        if code != "spa":
            raise ValueError(f"TensorFlow only hosts spa-eng.zip, not {code}-eng; use host='manythings'.")
        return TENSORFLOW_SPA_ENG_URL, "spa-eng.zip", "spa.txt"
    if host == "manythings":
        return MANYTHINGS_URL.format(code=code), f"manythings-{code}-eng.zip", f"{code}.txt"
    raise ValueError(f"host={host!r}: use 'auto', 'tensorflow' or 'manythings'.")


@contextlib.contextmanager
def _browser_user_agent() -> Iterator[None]:
    """Install a urllib opener that sends a browser User-Agent; restore the old one."""
    previous = urllib.request._opener  # None unless someone called install_opener
    opener = urllib.request.build_opener()
    opener.addheaders = [("User-Agent", BROWSER_USER_AGENT)]
    urllib.request.install_opener(opener)
    try:
        yield
    finally:
        urllib.request.install_opener(previous)


def _find_file(folder: Path, name: str) -> Path:
    """The file called ``name`` anywhere under ``folder`` (archives differ in layout)."""
    matches = sorted(Path(folder).rglob(name))
    if not matches:
        found = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
        raise FileNotFoundError(
            f"The archive extracted to {folder} holds no {name} (found: {found or 'nothing'}). "
            "Delete that folder and call download_anki(..., force_download=True)."
        )
    return matches[0]


def download_anki(
    language: str = "spa",
    *,
    host: Literal["auto", "tensorflow", "manythings"] = "auto",
    cache_dir: str | None = None,
    force_download: bool = False,
) -> Path:
    """Download (once, cached by ``keras.utils.get_file``) a Tatoeba/Anki zip.

    Works in Colab. manythings.org refuses urllib's default User-Agent, so a
    browser-like one is installed for the download and the previous urllib
    opener restored afterwards.

    Args:
        language: 3-letter manythings.org code (``"spa"``, ``"kor"``, ``"fra"``...)
            or a 2-letter ISO code (``"es"``, ``"ko"``).
        host: see :func:`anki_url`.
        cache_dir: Keras cache folder (default ``~/.keras``; files land in
            ``datasets/``).
        force_download: download again even if cached.

    Returns:
        Path of the extracted ``{code}.txt``; pass it to :func:`load_corpus` or
        :func:`load_tatoeba`.
    """
    import keras

    url, file_name, txt_name = anki_url(language, host)
    with _browser_user_agent():
        extracted = keras.utils.get_file(
            file_name, origin=url, extract=True, cache_dir=cache_dir, force_download=force_download
        )
    return _find_file(Path(extracted), txt_name)


# --------------------------------------------------------------------------- corpora by name
def shared_data_dir() -> Path | None:
    """The folder with the real corpora (``spa-eng/spa.txt``, ``kor-eng/kor.txt``).

    ``$SEQ2SEQ_KERAS_DATA`` if set (returned even if missing, so a wrong setting
    is reported, not silently ignored); else the first existing of
    ``<cwd>/../shared/data`` and ``<project root>/../shared/data``; else None.
    """
    configured = os.environ.get(_DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    project_root = Path(__file__).resolve().parents[2]  # seq2seq_keras/data/corpora.py -> the checkout
    for candidate in (Path.cwd() / ".." / "shared" / "data", project_root / ".." / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _shared_corpus_path(name: str) -> Path:
    """``"spa-eng"`` -> ``<shared_data_dir>/spa-eng/spa.txt``, or a FileNotFoundError saying what to do."""
    code = name.split("-")[0]
    folder = shared_data_dir()
    if folder is not None and (folder / name / f"{code}.txt").is_file():
        return folder / name / f"{code}.txt"
    looked = (
        f"{folder / name / f'{code}.txt'}"
        if folder is not None
        else (f"../shared/data/{name}/{code}.txt (no shared data folder found)")
    )
    raise FileNotFoundError(
        f"Corpus {name!r} not found (looked for {looked}). Download it with "
        f"seq2seq_keras.data.download_anki({code!r}) and pass the returned path to "
        f"load_corpus, or set {_DATA_ENV} to a folder holding {name}/{code}.txt."
    )


def _builtin_pairs(n: int, seed: int, source: str) -> SentencePairs:
    """The generated Korean/English corpus; alignments are ``(source_index, target_index)`` links."""
    from . import builtin_ko_en

    generated = builtin_ko_en.generate_pairs(n=n, seed=seed)
    korean = tuple(p.source for p in generated)
    english = tuple(p.target for p in generated)
    links = tuple(tuple(p.alignment) for p in generated)  # (korean_index, english_index)
    if source == "english":  # English -> Korean: swap the sides and each link
        return SentencePairs(
            source=english,
            target=korean,
            source_lang="en",
            target_lang="ko",
            name="builtin-ko-en",
            alignments=tuple(tuple(sorted((t, s) for s, t in pair)) for pair in links),
        )
    return SentencePairs(
        source=korean,
        target=english,
        source_lang="ko",
        target_lang="en",
        name="builtin-ko-en",
        alignments=links,
    )


def load_corpus(
    name_or_path: str | os.PathLike,
    *,
    limit: int | None = None,
    seed: int = 0,
    source: Literal["other", "english"] = "other",
    errors: Literal["strict", "skip"] = "strict",
) -> SentencePairs:
    """Load a corpus by name (see :data:`KNOWN_CORPORA`) or from a Tatoeba file.

    Args:
        name_or_path: ``"builtin-ko-en"`` (generated Korean -> English pairs with
            alignments), ``"spa-eng"`` / ``"kor-eng"`` (from
            :func:`shared_data_dir`), or the path of a Tatoeba ``.txt`` file.
        limit: keep the first ``limit`` pairs (for ``builtin-ko-en``: generate
            that many; default 30,000). ``None`` keeps all.
        seed: generator seed for ``builtin-ko-en``; ignored for files.
        source: ``"other"`` (default) translates into English (Korean ->
            English for ``builtin-ko-en``); ``"english"`` from English (the
            builtin corpus' alignment links are swapped to match).
        errors: passed to :func:`load_tatoeba` for files (malformed lines raise
            by default).

    Raises:
        FileNotFoundError: a named corpus is not in the shared data folder, or
            the path does not exist; the message says how to get it.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit={limit}: use a non-negative number of pairs, or None for all.")
    if source not in ("other", "english"):
        raise ValueError(f"source={source!r}: use 'other' (into English) or 'english' (from English).")
    name = os.fspath(name_or_path)
    if name == "builtin-ko-en":
        return _builtin_pairs(BUILTIN_DEFAULT_PAIRS if limit is None else limit, seed, source)
    if name in KNOWN_CORPORA:
        path = _shared_corpus_path(name)
    elif Path(name).is_file():
        path = Path(name)
    else:
        raise FileNotFoundError(
            f"{name!r} is neither a known corpus ({', '.join(KNOWN_CORPORA)}) nor an existing file."
        )
    pairs = load_tatoeba(path, source=source, errors=errors)
    return pairs if limit is None else pairs[:limit]


# --------------------------------------------------------------------------- split
def _split_bucket(text: str, modulus: int) -> int:
    """``sha1(text) mod modulus``: 0 is test, 1 validation, the rest train."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % modulus


def split_pairs(
    pairs: SentencePairs,
    *,
    modulus: int = 50,
    key: Literal["english", "source", "target"] = "english",
) -> tuple[SentencePairs, SentencePairs, SentencePairs]:
    """Deterministic train / validation / test split by a hash of one side.

    ``h = int(sha1(text.encode("utf-8")).hexdigest(), 16)``; a pair goes to test
    if ``h % modulus == 0``, validation if ``h % modulus == 1``, train otherwise
    (about 2% / 2% / 96% with the default modulus 50; spa-eng gives 2,488 test
    pairs). Equal texts always land in the same split, so hashing the English
    side (the default, whichever direction is translated) keeps a sentence with
    several translations (common in Tatoeba) from leaking between train and
    test. ``key="source"`` / ``"target"`` hash that side instead. The hash is of
    the text exactly as loaded (case and punctuation included). Order within
    each split follows the input.

    Returns:
        ``(train, validation, test)``, each a SentencePairs named
        ``"<name>/train"`` etc.
    """
    if modulus < 3:
        raise ValueError(f"modulus={modulus}: needs >= 3 so that train, validation and test are all possible.")
    if key == "english":
        keys = pairs.english
    elif key == "source":
        keys = pairs.source
    elif key == "target":
        keys = pairs.target
    else:
        raise ValueError(f"key={key!r}: use 'english', 'source' or 'target'.")
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for index, text in enumerate(keys):
        bucket = _split_bucket(text, modulus)
        parts["test" if bucket == 0 else "validation" if bucket == 1 else "train"].append(index)
    train, validation, test = (
        dataclasses.replace(pairs.subset(parts[split]), name=f"{pairs.name}/{split}")
        for split in ("train", "validation", "test")
    )
    return train, validation, test
