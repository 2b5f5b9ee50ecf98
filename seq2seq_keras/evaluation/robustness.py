"""Robustness evaluation: names, numbers, long inputs and ``[UNK]``, built from the corpus itself.

Tatoeba-style test sentences are short and their names are the training set's
names ("Tom", "Mary"). What a user meets is longer and full of names and numbers
the model never saw. :func:`build_robustness_set` makes such sentences out of
the test split, with no download:

* **swapped** (names and numbers): test pairs with a proper name or a number that
  appears verbatim on both sides (a capitalised word whose lower-case form never
  occurs in the training targets, e.g. "Tom"; or a run of digits) get it
  replaced, on both sides and consistently, by an invented name or a number that
  occurs nowhere in the training pairs. Scored: the share of these sentences
  whose output contains every inserted name/number verbatim (case-insensitive,
  whole word): the **copy rate**.
* **long**: the longest test sentences (by source words) and concatenations of
  2-3 random test pairs (source and target joined by a space). Scored: BLEU and
  chrF (sacrebleu, lower-cased, against the raw references, the same for every
  system) and the **repetition rate**: the share of outputs with a word 3-gram
  repeated that the reference does not repeat (degenerate loops such as "of the
  [UNK] of the [UNK]").
* on every set, the **[UNK] rate**: the share of output words that are ``[UNK]``.

:func:`evaluate_robustness` scores any translation function (``list[str] ->
list[str]``), so the tutorial reference is scored exactly like our model.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"^\d+$")
_UNK = re.compile(r"\[UNK\]")
_SCORED_WORDS = re.compile(r"\[UNK\]|\w+", re.UNICODE)
_SYLLABLES = (
    "ka",
    "lo",
    "ven",
    "tri",
    "zu",
    "mar",
    "qua",
    "bel",
    "dor",
    "wix",
    "ny",
    "sol",
    "gra",
    "pel",
    "rhu",
    "fen",
    "jo",
    "tas",
    "vik",
    "ul",
    "zem",
    "bro",
    "ki",
    "oth",
)
DEFAULT_SWAPPED = 300
DEFAULT_LONGEST = 150
DEFAULT_CONCATENATIONS = 150


@dataclasses.dataclass
class RobustnessSet:
    """The sentences :func:`build_robustness_set` made.

    ``swapped``: dicts with ``source``, ``target`` (after the swap), ``inserted``
    (the new names/numbers, as written) and ``original`` (what they replaced).
    ``long``: dicts with ``source``, ``target`` and ``kind`` (``"longest"`` or
    ``"concatenation"``).
    """

    swapped: list[dict]
    long: list[dict]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _contains_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE) is not None


def _replace_word(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, text)


def swappable_tokens(source: str, target: str, common_lowercase: set[str]) -> list[str]:
    """Names and numbers written identically on both sides of a pair.

    A name: a capitalised word of the target that also occurs in the source and
    whose lower-case form is never a word of the (training) targets (so "No" or
    "I" are not names). A number: a run of digits in both sides.
    """
    source_words = set(_words(source))
    found = []
    for word in dict.fromkeys(_words(target)):
        if word not in source_words:
            continue
        if _NUMBER.match(word) or (word[:1].isupper() and word.isalpha() and word.lower() not in common_lowercase):
            found.append(word)
    return found


def _draw_unseen(seen: set[str], count: int, draw: Callable[[], str], key: Callable[[str], str]) -> list[str]:
    """``count`` distinct results of ``draw()`` whose ``key`` is not in ``seen`` (drawn in order)."""
    found: list[str] = []
    taken = set(seen)
    while len(found) < count:
        candidate = draw()
        if key(candidate) not in taken:
            taken.add(key(candidate))
            found.append(candidate)
    return found


def unseen_names(seen: set[str], count: int, rng: random.Random) -> list[str]:
    """``count`` invented ASCII names (capitalised) whose lower-case form is not in ``seen``."""

    def draw() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()

    return _draw_unseen(seen, count, draw, key=str.lower)


def unseen_numbers(seen: set[str], count: int, rng: random.Random) -> list[str]:
    """``count`` numbers (3-5 digits, no leading zero) that are not words of ``seen``."""
    return _draw_unseen(seen, count, lambda: str(rng.randint(100, 99_999)), key=str)


def build_robustness_set(
    train,
    test,
    *,
    seed: int = 0,
    swapped: int = DEFAULT_SWAPPED,
    longest: int = DEFAULT_LONGEST,
    concatenations: int = DEFAULT_CONCATENATIONS,
) -> RobustnessSet:
    """Build the swapped and long sentences from ``test``, checking novelty against ``train``.

    ``train`` and ``test``: :class:`~seq2seq_keras.data.SentencePairs` (or
    anything with ``source`` and ``target`` sequences of str). Deterministic for
    a given ``seed``.
    """
    rng = random.Random(seed)
    seen = {w.lower() for text in list(train.source) + list(train.target) for w in _words(text)}
    common_lowercase = {w for text in train.target for w in _words(text) if w.islower()}
    candidates = []
    for source, target in zip(test.source, test.target):
        tokens = swappable_tokens(source, target, common_lowercase)
        if tokens:
            candidates.append((source, target, tokens))
    rng.shuffle(candidates)
    candidates = candidates[:swapped]
    n_names = sum(1 for *_, tokens in candidates for t in tokens if not _NUMBER.match(t))
    n_numbers = sum(1 for *_, tokens in candidates for t in tokens if _NUMBER.match(t))
    names = iter(unseen_names(seen, n_names, rng))
    numbers = iter(unseen_numbers(seen, n_numbers, rng))
    swapped_rows = []
    for source, target, tokens in candidates:
        inserted = []
        for token in tokens:
            new = next(numbers) if _NUMBER.match(token) else next(names)
            source, target = _replace_word(source, token, new), _replace_word(target, token, new)
            inserted.append(new)
        swapped_rows.append({"source": source, "target": target, "inserted": inserted, "original": tokens})

    pairs = list(zip(test.source, test.target))
    by_length = sorted(range(len(pairs)), key=lambda i: (-len(pairs[i][0].split()), i))
    long_rows = [{"source": pairs[i][0], "target": pairs[i][1], "kind": "longest"} for i in by_length[:longest]]
    if len(pairs) >= 2:
        for _ in range(concatenations):
            chosen = rng.sample(range(len(pairs)), min(len(pairs), rng.randint(2, 3)))
            long_rows.append(
                {
                    "source": " ".join(pairs[i][0] for i in chosen),
                    "target": " ".join(pairs[i][1] for i in chosen),
                    "kind": "concatenation",
                }
            )
    return RobustnessSet(swapped=swapped_rows, long=long_rows)


# ---------------------------------------------------------------------- metrics
def unk_rate(outputs: Sequence[str]) -> float | None:
    """Share of output words (``\\w+`` runs and ``[UNK]``) that are ``[UNK]``; None without words."""
    words = [w for text in outputs for w in _SCORED_WORDS.findall(text)]
    return sum(1 for w in words if w == "[UNK]") / len(words) if words else None


def _trigrams(text: str) -> collections.Counter:
    words = [w.lower() for w in _SCORED_WORDS.findall(text)]
    return collections.Counter(zip(words, words[1:], words[2:]))


def has_repetition(output: str, reference: str) -> bool:
    """Whether ``output`` repeats a word 3-gram that ``reference`` does not repeat."""
    reference_counts = _trigrams(reference)
    return any(n >= 2 and reference_counts[g] < 2 for g, n in _trigrams(output).items())


def repetition_rate(outputs: Sequence[str], references: Sequence[str]) -> float | None:
    """Share of outputs with :func:`has_repetition`; None for no outputs."""
    if not outputs:
        return None
    return sum(has_repetition(o, r) for o, r in zip(outputs, references)) / len(outputs)


def copy_rate(outputs: Sequence[str], inserted: Sequence[Sequence[str]]) -> float | None:
    """Share of outputs containing every inserted name/number verbatim (whole word, any case)."""
    if not outputs:
        return None
    return sum(all(_contains_word(o, w) for w in words) for o, words in zip(outputs, inserted)) / len(outputs)


def _scores(outputs: Sequence[str], references: Sequence[str]) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    if not outputs:
        return {"bleu": None, "chrf": None}
    bleu, chrf = BLEU(lowercase=True), CHRF(lowercase=True)
    return {
        "bleu": float(bleu.corpus_score(list(outputs), [list(references)]).score),
        "chrf": float(chrf.corpus_score(list(outputs), [list(references)]).score),
    }


def evaluate_robustness(
    translate_fn: Callable[[list[str]], list[str]], rset: RobustnessSet, examples: int = 3
) -> dict[str, Any]:
    """Score one system on a :class:`RobustnessSet`.

    ``translate_fn``: sentences -> output texts, in order. Returns
    ``{"swapped": {...}, "long": {...}, "unk_rate", "examples"}``: copy rate,
    [UNK] rate, BLEU/chrF and repetition rate (long inputs, also per kind) and
    the share of long outputs of 45+ words.
    """
    swapped_out = translate_fn([r["source"] for r in rset.swapped]) if rset.swapped else []
    long_out = translate_fn([r["source"] for r in rset.long]) if rset.long else []
    long_refs = [r["target"] for r in rset.long]
    result: dict[str, Any] = {
        "swapped": {
            "sentences": len(swapped_out),
            "copy_rate": copy_rate(swapped_out, [r["inserted"] for r in rset.swapped]),
            "unk_rate": unk_rate(swapped_out),
            **_scores(swapped_out, [r["target"] for r in rset.swapped]),
        },
        "long": {
            "sentences": len(long_out),
            **_scores(long_out, long_refs),
            "repetition_rate": repetition_rate(long_out, long_refs),
            "unk_rate": unk_rate(long_out),
            "outputs_45_words_or_more": (
                sum(len(_SCORED_WORDS.findall(o)) >= 45 for o in long_out) / len(long_out) if long_out else None
            ),
        },
        "unk_rate": unk_rate(list(swapped_out) + list(long_out)),
    }
    for kind in ("longest", "concatenation"):
        idx = [i for i, r in enumerate(rset.long) if r["kind"] == kind]
        outs, refs = [long_out[i] for i in idx], [long_refs[i] for i in idx]
        result["long"][kind] = {
            "sentences": len(idx),
            **_scores(outs, refs),
            "repetition_rate": repetition_rate(outs, refs),
        }
    result["examples"] = [
        {"source": r["source"], "reference": r["target"], "output": o}
        for r, o in list(zip(rset.swapped, swapped_out))[:examples]
    ] + [
        {"source": r["source"], "reference": r["target"], "output": o}
        for r, o in list(zip(rset.long, long_out))[:examples]
    ]
    return result


def model_translator(model, *, batch_size: int = 64, **options) -> Callable[[list[str]], list[str]]:
    """``list[str] -> list[str]`` with :func:`seq2seq_keras.decoding.pipeline.translate` and ``options``."""
    from ..decoding.pipeline import translate

    def run(texts: list[str]) -> list[str]:
        return [t.text for t in translate(model, texts, batch_size=batch_size, **options)]

    return run


#: The systems ``evaluate --robustness`` scores for one model: label -> translate() options.
DEFAULT_VARIANTS: Mapping[str, dict] = {
    "greedy": {},
    "greedy, --no-copy-unknown-names": {"copy_unknown_names": False},
    "greedy, --no-replace-unk": {"replace_unk": False},
    "greedy, --block-ngram-repeat 3": {"block_ngram_repeat": 3},
    "beam 4": {"method": "beam", "beam_width": 4},
}


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def robustness_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table, one row per system: copy rate, [UNK] rate, long-input BLEU/chrF, repetition."""
    lines = [
        "| system | names/numbers copied | [UNK] in output | long BLEU | long chrF | repetition (long) "
        "| long outputs >= 45 words |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        lines.append(
            f"| {label} | {_pct(r['swapped']['copy_rate'])} | {_pct(r['unk_rate'])} | {_num(r['long']['bleu'])} "
            f"| {_num(r['long']['chrf'])} | {_pct(r['long']['repetition_rate'])} "
            f"| {_pct(r['long']['outputs_45_words_or_more'])} |"
        )
    return "\n".join(lines) + "\n"


def robustness_markdown(results: Mapping[str, Mapping[str, Any]], rset: RobustnessSet, title: str = "") -> str:
    """The whole robustness report (definitions, table, a few examples) as Markdown."""
    kinds = collections.Counter(r["kind"] for r in rset.long)
    parts = [
        f"# Robustness{': ' + title if title else ''}\n",
        f"Built from the corpus itself: {len(rset.swapped)} test pairs with a name or number swapped for an unseen "
        f"one (both sides); {kinds['longest']} longest test sentences and {kinds['concatenation']} concatenations "
        "of 2-3 test pairs. Copy rate: outputs containing every inserted name/number verbatim. Repetition: outputs "
        "repeating a word 3-gram the reference does not repeat. BLEU/chrF: sacrebleu, lower-cased, raw references.\n",
        robustness_table(results),
    ]
    for label, r in results.items():
        parts.append(f"\n## {label}: examples\n")
        for e in r.get("examples", []):
            parts.append(
                f"- `{e['source'][:200]}`\n  - reference: {e['reference'][:200]}\n  - output: {e['output'][:200]}\n"
            )
    return "".join(parts)
