"""Tests for the built-in Korean -> English corpus (seq2seq_keras.data.builtin_ko_en)."""

from __future__ import annotations

import random
import re
import statistics
import unicodedata

import numpy as np
import pytest

from seq2seq_keras.data import builtin_ko_en as bk

CANONICAL_ALIGNMENT = ((0, 0), (1, 1), (1, 2), (1, 3), (2, 4))


@pytest.fixture(scope="module")
def corpus() -> list[bk.AlignedPair]:
    return bk.generate_pairs(30000, seed=0)


@pytest.fixture(scope="module")
def by_source(corpus) -> dict[str, bk.AlignedPair]:
    return {p.source: p for p in corpus}


def _single_clause(pair: bk.AlignedPair) -> bool:
    return "and" not in pair.target_tokens


def _body(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tokens[:-1] if tokens and tokens[-1] == "." else tokens


def _has_final_consonant(syllable: str) -> bool:
    """Independent of the module: NFD splits a syllable with batchim into 3 jamo."""
    return len(unicodedata.normalize("NFD", syllable)) == 3


# ------------------------------------------------------------------ determinism
def test_deterministic_for_a_seed_and_different_across_seeds():
    state = random.getstate()
    a = bk.generate_pairs(3000, seed=5)
    b = bk.generate_pairs(3000, seed=5)
    c = bk.generate_pairs(3000, seed=6)
    assert a == b
    assert [p.source for p in a] != [p.source for p in c]
    assert random.getstate() == state  # never touches the global RNG


def test_n_distinct_korean_sides(corpus):
    assert len(corpus) == 30000
    assert len({p.source for p in corpus}) == 30000


def test_fifty_thousand_pairs_are_reachable():
    pairs = bk.generate_pairs(50000, seed=1)
    assert len({p.source for p in pairs}) == 50000


def test_korean_to_english_is_a_function(corpus):
    english_of: dict[str, str] = {}
    for pairs in (corpus, bk.generate_pairs(8000, seed=1), bk.generate_pairs(8000, seed=2, max_clauses=1)):
        for p in pairs:
            assert english_of.setdefault(p.source, p.target) == p.target, p.source
    assert len(english_of) > 40000  # the seeds overlap only a little


# ------------------------------------------------------------------ text form
def test_korean_is_nfc_without_jamo(corpus):
    for p in corpus:
        assert unicodedata.is_normalized("NFC", p.source), p.source
        assert not any(0x1100 <= ord(ch) <= 0x11FF or 0x3130 <= ord(ch) <= 0x318F for ch in p.source)


def test_text_form(corpus):
    with_period = 0
    for p in corpus:
        assert p.source.endswith(".") == p.target.endswith("."), p
        with_period += p.target.endswith(".")
        assert p.target[0].isupper(), p.target
        assert not re.search(r"[,'’\-!?;:\"]", p.source + p.target), p
        assert "  " not in p.source + p.target and " ." not in p.source + p.target
    assert 0.75 < with_period / len(corpus) < 0.85


def test_stored_tokens_equal_word_tokens(corpus):
    from seq2seq_keras.words import word_tokens

    for p in corpus:
        assert tuple(word_tokens(p.source)) == p.source_tokens, p.source
        assert tuple(word_tokens(p.target)) == p.target_tokens, p.target


# ------------------------------------------------------------------ alignment
def test_every_target_token_aligned_and_in_range(corpus):
    for p in corpus:
        assert p.alignment == tuple(sorted(set(p.alignment)))
        for s, t in p.alignment:
            assert 0 <= s < len(p.source_tokens) and 0 <= t < len(p.target_tokens)
        assert {t for _, t in p.alignment} == set(range(len(p.target_tokens))), p
    m = bk.alignment_matrix(corpus[0])
    assert m.dtype == np.bool_ and m.shape == (len(corpus[0].target_tokens), len(corpus[0].source_tokens))
    assert m.any(axis=1).all() and m.sum() == len(corpus[0].alignment)


def test_function_words_link_to_the_documented_korean_word(corpus):
    for p in corpus:
        links: dict[int, set[str]] = {}
        for s, t in p.alignment:
            links.setdefault(t, set()).add(p.source_tokens[s])
        for t, word in enumerate(p.target_tokens):
            ko = links[t]
            if word == ".":
                assert ko == {"."}
            elif word == "and":
                assert len(ko) == 1 and next(iter(ko)).endswith("고"), p
            elif word == "will":
                assert ko <= {"것이다", "것이고"}, p
            elif word == "not":  # 안, or the negative copula 아니다/아니었다/아닐/아니고
                assert len(ko) == 1 and next(iter(ko)).startswith(("안", "아니", "아닐")), p
            elif word == "yesterday":
                assert ko == {"어제"}
            elif word == "with":
                assert ko == {"함께"}
            elif word in ("do", "does", "did"):
                assert "안" in ko and len(ko) == 2, p


def test_canonical_pair_first_for_every_seed():
    for seed in (0, 1, 7, 12345):
        for max_clauses in (1, 3):
            first = bk.generate_pairs(20, seed=seed, max_clauses=max_clauses)[0]
            assert first.source == "나는 학생이다."
            assert first.target == "I am a student."
            assert first.source_tokens == ("나는", "학생이다", ".")
            assert first.target_tokens == ("i", "am", "a", "student", ".")
            assert first.alignment == CANONICAL_ALIGNMENT
    assert bk.generate_pairs(1)[0].source == "나는 학생이다."
    assert bk.generate_pairs(0) == []


def test_future_alignment_as_documented(by_source):
    p = by_source["나는 내일 물을 마실 것이다."]
    assert p.target == "I will drink water tomorrow."
    # will -> 것이다, drink -> 마실, water -> 물을, tomorrow -> 내일
    assert p.alignment == ((0, 0), (1, 4), (2, 3), (3, 2), (4, 1), (5, 5))


# ------------------------------------------------------------------ grammar
def test_particles_follow_batchim():
    assert bk.has_batchim("학생") and not bk.has_batchim("의사") and bk.has_batchim("학생들")
    assert [bk.attach_particle("학생", k) for k in ("topic", "subject", "object")] == ["학생은", "학생이", "학생을"]
    assert [bk.attach_particle("의사", k) for k in ("topic", "subject", "object")] == ["의사는", "의사가", "의사를"]
    assert bk.attach_particle("나", "subject") == "내가" and bk.attach_particle("너", "subject") == "네가"
    assert bk.attach_particle("나", "topic") == "나는" and bk.attach_particle("그들", "topic") == "그들은"
    assert bk.attach_particle("친구", "with") == "친구와" and bk.attach_particle("선생님", "with") == "선생님과"
    with pytest.raises(ValueError):
        bk.has_batchim("abc")


def test_particles_in_the_corpus(corpus):
    words = {w for p in corpus for w in p.source_tokens}
    assert {"학생은", "학생이", "학생을", "의사는", "의사가", "의사를", "내가", "네가", "학생이다", "의사다"} <= words
    assert not {"학생는", "학생가", "학생를", "의사은", "의사을", "나가", "너가", "의사이다"} & words
    modifiers = {m.ko for m in bk.MODIFIERS}
    pairs = {"을": True, "를": False, "은": True, "는": False, "과": True, "와": False}
    checked = 0
    for w in words - modifiers:
        if len(w) >= 2 and w[-1] in pairs and not w.endswith("에서"):
            assert _has_final_consonant(w[-2]) == pairs[w[-1]], w
            checked += 1
    assert checked > 100


def test_sov_to_svo(by_source, corpus):
    p = by_source["나는 사과를 먹는다."]
    assert p.target == "I eat an apple."
    assert p.source_tokens.index("먹는다") == len(p.source_tokens) - 2  # verb last
    assert p.target_tokens.index("eat") == 1 and (2, 1) in p.alignment  # verb second
    forms = {}
    for v in bk.TRANSITIVE_VERBS:
        forms[v.present] = {v.en.split()[0], v.en_3s.split()[0]}
        forms[v.past] = {v.en_past.split()[0]}
    pronoun_words = {bk.attach_particle(pr.ko, k) for pr in bk.PRONOUNS for k in ("topic", "subject")}
    checked = 0
    for p in corpus:
        body = _body(p.source_tokens)
        if _single_clause(p) and body[0] in pronoun_words and body[-1] in forms and "안" not in body:
            assert any(w.endswith(("을", "를")) for w in body[1:-1])
            assert p.target_tokens[1] in forms[body[-1]], p
            assert (len(body) - 1, 1) in p.alignment
            checked += 1
    assert checked > 200


def test_objects_make_sense(corpus):
    verb_of = {}
    for v in bk.TRANSITIVE_VERBS:
        for form in (v.present, v.past, v.future):
            verb_of[form] = v
    noun_of = {bk.attach_particle(n.ko, "object"): n for n in bk.NOUNS}
    checked = 0
    for p in corpus:
        body = _body(p.source_tokens)
        verbs = [verb_of[w] for w in body if w in verb_of]
        objects = [noun_of[w] for w in body if w in noun_of]
        if _single_clause(p) and verbs:
            assert len(verbs) == 1 and len(objects) == 1, p
            assert objects[0].tags & verbs[0].object_tags, p
            checked += 1
    assert checked > 1000


def test_subject_verb_agreement(by_source, corpus):
    expected = {
        "나는 학생이다.": "I am a student.",
        "너는 학생이다.": "You are a student.",
        "그는 선생님이다.": "He is a teacher.",
        "그녀는 의사다.": "She is a doctor.",
        "우리는 학생이다.": "We are students.",
        "그들은 선생님이다.": "They are teachers.",
        "나는 학생이었다.": "I was a student.",
        "그는 빵을 먹는다.": "He eats bread.",
        "그들은 빵을 먹는다.": "They eat bread.",
        "나는 학생이 아니다.": "I am not a student.",
    }
    for ko, en in expected.items():
        assert by_source[ko].target == en
    present = {v.present: v for v in bk.TRANSITIVE_VERBS + bk.INTRANSITIVE_VERBS}
    person = {
        "그는": "3s",
        "그가": "3s",
        "그녀는": "3s",
        "그녀가": "3s",
        "그들은": "pl",
        "그들이": "pl",
        "우리는": "pl",
        "우리가": "pl",
        "나는": "1s",
        "내가": "1s",
        "너는": "2",
        "네가": "2",
    }
    be = {"1s": ("am", "was"), "2": ("are", "were"), "3s": ("is", "was"), "pl": ("are", "were")}
    seen = set()
    for p in corpus:
        body, en = _body(p.source_tokens), p.target_tokens
        if not _single_clause(p) or body[0] not in person:
            continue
        who = person[body[0]]
        if body[-1] in present and "안" not in body:  # he eats / they eat
            v = present[body[-1]]
            assert en[1] == (v.en_3s if who == "3s" else v.en).split()[0], p
            seen.add(("verb", who))
        elif body[-1] in present:  # he does not eat / they do not eat
            assert en[1:3] == (("does" if who == "3s" else "do"), "not"), p
            seen.add(("neg", who))
        elif en[1] in {"am", "are", "is", "was", "were"}:  # I am a student / you were happy
            assert en[1] in be[who], p
            seen.add(("be", who))
    assert {("verb", "3s"), ("verb", "pl"), ("verb", "1s"), ("neg", "3s"), ("neg", "pl")} <= seen
    assert {("be", "1s"), ("be", "2"), ("be", "3s"), ("be", "pl")} <= seen


def test_time_adverbs_agree_with_tense(corpus):
    for p in corpus:
        if not _single_clause(p):
            continue
        if "어제" in p.source_tokens:
            assert "yesterday" in p.target_tokens and "will" not in p.target_tokens
        if "내일" in p.source_tokens:
            assert "tomorrow" in p.target_tokens and "will" in p.target_tokens
        if "매일" in p.source_tokens:
            assert p.target.rstrip(".").endswith("every day") and "will" not in p.target_tokens


def test_pronoun_copula_sentences_are_common(corpus):
    simple = [p for p in corpus if re.fullmatch(r"(I am|You are|He is|She is) an? [a-z ]+\.?", p.target)]
    assert len(simple) >= 150


# ------------------------------------------------------------------ sizes
def test_clause_counts(corpus):
    single = sum(_single_clause(p) for p in corpus) / len(corpus)
    assert 0.5 < single < 0.7
    assert max(p.target_tokens.count("and") for p in corpus) == 2
    assert all(_single_clause(p) for p in bk.generate_pairs(3000, seed=3, max_clauses=1))


def test_length_distribution(corpus):
    lengths = [len(p.source_tokens) for p in corpus]
    assert set(range(2, 21)) <= set(lengths)
    assert 4 <= statistics.median(lengths) <= 10 and max(lengths) <= 40


def test_impossible_n_raises():
    limit = bk.max_distinct_pairs(1)
    assert limit > 10**9 and bk.max_distinct_pairs(3) > limit
    with pytest.raises(ValueError, match="distinct"):
        bk.generate_pairs(limit + 1, max_clauses=1)
    with pytest.raises(ValueError):
        bk.generate_pairs(-1)
    with pytest.raises(ValueError):
        bk.generate_pairs(10, max_clauses=0)


def test_sampler_gives_up_instead_of_looping(monkeypatch):
    monkeypatch.setattr(bk, "_ATTEMPTS_PER_PAIR", 0)
    monkeypatch.setattr(bk, "_MIN_ATTEMPTS", 50)
    with pytest.raises(ValueError, match="attempts"):
        bk.generate_pairs(1000)


def test_docstring_states_the_maximum():
    assert f"{bk.max_distinct_pairs(1):,}" in bk.__doc__
    assert f"{bk.max_distinct_pairs(3):.1e}".replace("+", "") in bk.__doc__
