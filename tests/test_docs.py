"""The README and the docs site (docs/, mkdocs.yml): short, every link resolving, each equation of the
concepts page followed by a link to the function that runs it, the nav complete, the README's numbers
about the built-in corpus equal to the data, and ``mkdocs build --strict`` passing (and failing on a
broken link or reference).

No TensorFlow: cross-references are resolved by reading the package's source with ``ast``, and the corpus
numbers come from the generator, which is plain Python.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq_keras.data import builtin_ko_en
from seq2seq_keras.data.corpora import BUILTIN_DEFAULT_PAIRS, load_corpus, split_pairs
from seq2seq_keras.words import word_tokens

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 150
#: How far after an equation block (in lines) its cross-reference may come.
EQUATION_LINK_WINDOW = 5

PAGES = sorted(DOCS.rglob("*.md"))
MARKDOWN_FILES = [README, *PAGES]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans (links inside them are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _relative_links(text: str) -> list[str]:
    """Targets of Markdown links and images that point into the repository (no scheme, not just an anchor)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", _prose(text))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


# --------------------------------------------------------------------------- the README
def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; keep it <= {README_MAX_LINES}, move text to docs/"


def test_readme_names_the_three_commands_and_links_into_the_docs():
    text = README.read_text(encoding="utf-8")
    for command in ("make demo", "make test", "make docs"):
        assert command in text
    linked = {t.split("#")[0] for t in _relative_links(text)}
    for page in ("docs/concepts.md", "docs/data.md", "docs/serving.md", "docs/install.md"):
        assert page in linked, f"README.md does not link {page}"


# --------------------------------------------------------------------------- links
@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=_name)
def test_every_relative_link_resolves_to_a_file(path):
    broken = []
    for target in _relative_links(path.read_text(encoding="utf-8")):
        file = target.split("#")[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{_name(path)} links to missing files: {broken}"


def test_the_link_check_finds_a_broken_link():
    """The check above is not vacuous: links in prose are found, links in code are not."""
    text = "See [a](docs/nope.md#x), ![b](img.png), [c](https://x.org), [d](#here).\n```\n[e](f.md)\n```\n`[g](h.md)`"
    assert _relative_links(text) == ["docs/nope.md#x", "img.png"]


# --------------------------------------------------------------------------- cross-references
def _module_file(parts: list[str]) -> Path | None:
    """The source file of the module ``parts`` names (a package's ``__init__.py`` or a ``.py`` file)."""
    base = ROOT.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _names_defined(body: list[ast.stmt], *, self_attributes: bool = False) -> dict[str, ast.AST]:
    """Functions, classes and assigned names of a module or class body; with ``self_attributes``, also
    the ``self.x = ...`` attributes set in its methods."""
    names: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = node
    if self_attributes:
        for method in (n for n in body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(method):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    if isinstance(node.value, ast.Name) and node.value.id == "self":
                        names.setdefault(node.attr, node)
    return names


def resolve(dotted: str) -> str | None:
    """Why ``dotted`` does not name a module, class, function, method or attribute of the package's
    source; None when it does. Read statically (the package's modules import TensorFlow)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        file = _module_file(parts[:split])
        if file is not None:
            break
    else:
        return f"no module of {dotted}"
    body = ast.parse(file.read_text(encoding="utf-8")).body
    for depth, name in enumerate(parts[split:]):
        names = _names_defined(body, self_attributes=depth > 0)
        if name not in names:
            return f"{'.'.join(parts[: split + depth])} has no {name!r} ({_name(file)})"
        node = names[name]
        body = node.body if isinstance(node, ast.ClassDef) else []
    return None


def test_resolve_tells_real_names_from_made_up_ones():
    assert resolve("seq2seq_keras.model.attention.BahdanauAttention.score") is None
    assert resolve("seq2seq_keras.model.decoder.Decoder.attentional_layer") is None  # set in __init__
    assert resolve("seq2seq_keras.model.attention") is None
    assert resolve("seq2seq_keras.model.attention.BahdanauAttention.scor") is not None
    assert resolve("seq2seq_keras.model.attentions.bahdanau_score") is not None


def _cross_references(text: str) -> list[tuple[int, str]]:
    """``(line index, dotted path)`` of each mkdocs-autorefs reference ``[text][seq2seq_keras....]``."""
    return [
        (i, m) for i, line in enumerate(text.splitlines()) for m in re.findall(r"\]\[(seq2seq_keras(?:\.\w+)+)\]", line)
    ]


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_every_cross_reference_names_real_code(path):
    refs = _cross_references(path.read_text(encoding="utf-8"))
    unresolved = [reason for _, dotted in refs if (reason := resolve(dotted))]
    assert not unresolved, f"{_name(path)}: {unresolved}"


def _equation_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """``(first, last)`` line indexes of each ``$$ ... $$`` or ```` ```math ```` block."""
    blocks, start = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if start is None and stripped in ("$$", "```math"):
            start = i
        elif start is not None and stripped in ("$$", "```"):
            blocks.append((start, i))
            start = None
    assert start is None, f"an equation block opened at line {start + 1} is never closed"
    return blocks


def test_each_equation_of_the_concepts_page_is_followed_by_a_link_to_its_function():
    text = (DOCS / "concepts.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    blocks = _equation_blocks(lines)
    assert len(blocks) >= 15, f"the concepts page has {len(blocks)} equation blocks; expected the seed's equations"
    refs = _cross_references(text)
    missing, unresolved = [], []
    for first, last in blocks:
        after = [dotted for line, dotted in refs if last < line <= last + EQUATION_LINK_WINDOW]
        if not after:
            missing.append(f"line {first + 1}: {lines[first + 1].strip()}")
        elif reason := resolve(after[0]):
            unresolved.append(reason)
    assert not missing, f"equations with no cross-reference within {EQUATION_LINK_WINDOW} lines: {missing}"
    assert not unresolved, unresolved


# --------------------------------------------------------------------------- the nav
def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node] if node.endswith(".md") else []
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return [page for item in node for page in _nav_pages(item)]


def test_the_nav_lists_every_docs_page_and_only_those():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    pages = [str(p.relative_to(DOCS)) for p in PAGES]
    assert sorted(nav) == sorted(set(nav)), "a page is listed twice in mkdocs.yml's nav"
    assert set(nav) == set(pages), (
        f"not in the nav: {sorted(set(pages) - set(nav))}; in the nav but missing: {sorted(set(nav) - set(pages))}"
    )


def test_make_bench_writes_the_benchmarks_page_of_the_site():
    from benchmarks.run import DEFAULT_OUTPUT, build_parser

    assert Path(build_parser().parse_args([]).output) == DEFAULT_OUTPUT == DOCS / "benchmarks.md"
    text = DEFAULT_OUTPUT.read_text(encoding="utf-8")
    assert "](benchmarks_bleu_vs_time.png)" in text and (DOCS / "benchmarks_bleu_vs_time.png").is_file()


# --------------------------------------------------------------------------- the corpus numbers
def _demo_limit() -> int:
    """The number of pairs ``make demo`` trains on, read from the Makefile's demo recipe."""
    recipe = re.search(r"^demo:.*?(?=^\S)", (ROOT / "Makefile").read_text(), flags=re.S | re.M).group(0)
    return int(re.search(r"--data builtin-ko-en --limit (\d+)", recipe).group(1))


def _corpus_paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"\*\*What the built-in corpus covers\.\*\*.*?(?=\n\n)", text, flags=re.S)
    assert match, "README.md lacks its paragraph on what the built-in corpus covers"
    return " ".join(match.group(0).split())


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d[\d,]*", text))


def test_the_readmes_numbers_about_the_built_in_corpus_are_the_datas():
    limit = _demo_limit()
    pairs = load_corpus("builtin-ko-en", limit=limit)
    train, _, _ = split_pairs(pairs)
    korean = {w for s in pairs.source for w in word_tokens(s)}
    english = {w for s in pairs.target for w in word_tokens(s)}
    # the training split already holds every word, so the demo model's vocabulary is all of them
    assert korean == {w for s in train.source for w in word_tokens(s)}
    assert english == {w for s in train.target for w in word_tokens(s)}
    lengths = [len(word_tokens(s)) for s in pairs.source]
    clauses = inspect.signature(builtin_ko_en.generate_pairs).parameters["max_clauses"].default
    words = {1: "one", 2: "two", 3: "three", 4: "four"}

    paragraph = _corpus_paragraph()
    claims = [
        f"one to {words[clauses]} clauses",
        f"`make demo` trains on {limit:,} of its pairs ({len(train):,} in the training split)",
        f"together they use {len(korean):,} distinct Korean tokens",
        f"and {len(english):,} English ones",
        f"source sentences of {min(lengths)} to {max(lengths)} tokens (median {statistics.median(lengths):g})",
    ]
    for claim in claims:
        assert claim in paragraph, f"README.md should say {claim!r} (computed from the data)"
    unchecked = _numbers(paragraph) - _numbers(" ".join(claims))
    assert not unchecked, f"numbers about the corpus in README.md that no test checks: {sorted(unchecked)}"


def test_the_data_pages_word_counts_are_the_generators():
    text = " ".join((DOCS / "data.md").read_text(encoding="utf-8").split())
    g = builtin_ko_en
    for claim in (
        f"{BUILTIN_DEFAULT_PAIRS:,} pairs by default",
        f"{len(g.PRONOUNS)} pronouns, {len(g.NOUNS)} nouns",
        f"{len(g.TRANSITIVE_VERBS)} transitive and {len(g.INTRANSITIVE_VERBS)} intransitive verbs",
        f"{len(g.ADJECTIVES)} predicate adjectives",
        f"(`make demo`: {_demo_limit():,} pairs)",
    ):
        assert claim in text, f"docs/data.md should say {claim!r} (computed from the generator)"
    limit = _demo_limit()
    pairs = load_corpus("builtin-ko-en", limit=limit)
    korean = len({w for s in pairs.source for w in word_tokens(s)})
    english = len({w for s in pairs.target for w in word_tokens(s)})
    assert f"{korean:,} distinct Korean tokens" in text and f"and {english:,} English ones" in text


# --------------------------------------------------------------------------- the build
def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_mkdocs_builds_the_site_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    concepts = (tmp_path / "site" / "concepts" / "index.html").read_text(encoding="utf-8")
    # the cross-references became links into the API reference, which griffe rendered from the source
    assert 'href="../api/model/#seq2seq_keras.model.attention.BahdanauAttention.score"' in concepts
    api = (tmp_path / "site" / "api" / "model" / "index.html").read_text(encoding="utf-8")
    assert 'id="seq2seq_keras.model.attention.BahdanauAttention.score"' in api
    # the docstrings' Sphinx roles are code spans in every API page, never literal ":func:`...`" text
    for page in sorted((tmp_path / "site" / "api").glob("*/index.html")):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r":(?:func|meth|class|mod|data|attr|exc):", html), page
    shared = (tmp_path / "site" / "api" / "shared" / "index.html").read_text(encoding="utf-8")
    assert "<code>start_tensorflow</code>" in shared


def test_sphinx_roles_become_code_spans_of_their_targets():
    sys.path.insert(0, str(DOCS))
    try:
        from griffe_sphinx_roles import as_code
    finally:
        sys.path.remove(str(DOCS))
    assert as_code("See :func:`start_tensorflow` and :py:meth:`Seq2Seq.translate`.") == (
        "See `start_tensorflow` and `Seq2Seq.translate`."
    )
    assert as_code(":class:`~seq2seq_keras.model.attention.BahdanauAttention` (:data:`UNK_ID`)") == (
        "`BahdanauAttention` (`UNK_ID`)"
    )
    assert as_code("plain `code` and a time 10:30 stay") == "plain `code` and a time 10:30 stay"


def test_mkdocs_fails_on_a_broken_link_and_on_an_unresolved_reference(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    with open(docs / "concepts.md", "a", encoding="utf-8") as f:
        f.write("\n[gone](no-such-page.md) and [`nothing`][seq2seq_keras.model.attention.no_such_function]\n")
    config = tmp_path / "mkdocs.yml"
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    text = text.replace("paths: [.]", f"paths: [{ROOT}]")
    config.write_text(f"docs_dir: {docs}\n" + text, encoding="utf-8")
    result = _mkdocs(config, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "no-such-page.md" in output and "seq2seq_keras.model.attention.no_such_function" in output


def test_the_training_pages_option_table_names_real_train_flags():
    """Each flag of docs/training.md's "Options" table is a field of TrainConfig, and every field is there."""
    text = (DOCS / "training.md").read_text(encoding="utf-8")
    table = text[text.index("## Options") : text.index("## Interrupted training")]
    named = set()
    for row in re.findall(r"^\| [^|]+ \| (.+) \|$", table, flags=re.M):
        named |= set(re.findall(r"`--([a-z-]+)`", row))
    source = (ROOT / "seq2seq_keras" / "training" / "config.py").read_text(encoding="utf-8")
    config = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig")
    fields = {n.target.id for n in config.body if isinstance(n, ast.AnnAssign)}
    flags = {f.replace("_", "-") for f in fields} - {"input-feeding"} | {"no-input-feeding"}
    assert named == flags, f"only in the table: {sorted(named - flags)}; not in the table: {sorted(flags - named)}"
