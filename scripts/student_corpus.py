"""The public distillation corpus of the shipped student: the embedded public sets plus English text from Debian.

    python scripts/student_corpus.py --out .gpu_carry/corpus.jsonl [--no-debian] [--stats PATH.json]

Sources (all public, none labelled):
- embedded sets (`peft_transfer.assets`): wikipedia, lee_news, guardian_headlines, movie_plots, political_speeches;
- Debian packages, fetched with `apt-get download` into the peft-transfer cache and unpacked there (nothing is
  installed): `fortunes` (quotations and literature), `python3.11-doc` (the prose paragraphs of the Python
  documentation sources), `jargon-text` (the Jargon File), `debian-reference-en` (the Debian Reference).
Every text that shares an 8-word run (or, if short, its whole text) with a private task's data (Rotten Tomatoes,
BBC News: every split) is dropped and counted; `bbc_articles` is never a source (it is BBC News). The texts are
deduplicated, shuffled (seed 0, so the held-out blocks mix all sources) and written as JSON lines
{"text", "source"}; the per-source counts and tokens (SmolLM2 tokenizer) go to the stats file.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import re
import subprocess
from pathlib import Path

EMBEDDED = ("wikipedia", "lee_news", "guardian_headlines", "movie_plots", "political_speeches")
DEBIAN = ("fortunes", "python3.11-doc", "jargon-text", "debian-reference-en")
MIN_WORDS = 8


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.split()) >= MIN_WORDS]


def _unpacked(package: str, cache: Path) -> Path:
    """Root of the unpacked Debian package (downloaded and extracted once)."""
    root = cache / package
    if not root.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True)
        deb = sorted(cache.glob(f"{package}_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def debian_texts(package: str, cache: Path) -> list[str]:
    root = _unpacked(package, cache)
    if package == "fortunes":
        texts = []
        for f in sorted((root / "usr/share/games/fortunes").iterdir()):
            if f.is_file() and not f.is_symlink() and f.suffix not in (".dat", ".u8"):
                texts += [" ".join(t.split()) for t in f.read_text(errors="replace").split("\n%\n")
                          if len(t.split()) >= MIN_WORDS]
        return texts
    if package == "python3.11-doc":  # prose paragraphs of the reStructuredText sources: no code, no directives
        texts = []
        for f in sorted((root / "usr/share/doc/python3.11/html/_sources").rglob("*.txt")):
            for p in f.read_text(errors="replace").split("\n\n"):
                code_or_markup = p.startswith((" ", "..", "=", "-", "*", ":", ">>>", "+", "|"))
                if p.strip() and not code_or_markup and len(p.split()) >= MIN_WORDS:
                    texts.append(" ".join(p.split()))
        return texts
    if package == "jargon-text":
        with gzip.open(root / "usr/share/doc/jargon-text/jargon.txt.gz", "rt", errors="replace") as f:
            return _paragraphs(f.read())
    if package == "debian-reference-en":
        texts = []
        for f in sorted((root / "usr/share/debian-reference").glob("*.en.html")):
            for p in re.findall(r"<p>(.*?)</p>", f.read_text(errors="replace"), flags=re.S):
                p = " ".join(html.unescape(re.sub(r"<[^>]+>", "", p)).split())
                if len(p.split()) >= MIN_WORDS:
                    texts.append(p)
        return texts
    raise ValueError(package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="corpus file to write (.jsonl)")
    parser.add_argument("--stats", help="per-source counts as JSON (default: <out>.stats.json)")
    parser.add_argument("--no-debian", action="store_true", help="embedded sets only")
    parser.add_argument("--budget-tokens", type=float, default=1e8, help="token budget to express in epochs")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from peft_transfer.assets import load_bbc_news, load_public_texts, load_rotten_tomatoes
    from peft_transfer.assets.models import cache_root, embedded_model_path
    from peft_transfer.assets.overlap import overlapping_texts

    private = [t for data in (load_rotten_tomatoes(), load_bbc_news()) for split in data.values()
               for t in split["text"]]
    sources = {name: list(load_public_texts(name)["text"]) for name in EMBEDDED}
    if not args.no_debian:
        for package in DEBIAN:
            sources[f"debian:{package}"] = debian_texts(package, cache_root() / "debian")
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path("smollm2-135m"))
    seen: set[str] = set()
    rows, stats = [], {}
    for name, texts in sources.items():
        texts = [t for t in dict.fromkeys(texts) if t not in seen]
        seen.update(texts)
        dropped = set(overlapping_texts(texts, private))
        kept = [t for i, t in enumerate(texts) if i not in dropped]
        tokens = sum(len(ids) for start in range(0, len(kept), 2000)
                     for ids in tokenizer(kept[start:start + 2000], add_special_tokens=False)["input_ids"])
        stats[name] = {"texts": len(kept), "dropped_overlapping_private": len(dropped), "tokens": tokens}
        rows += [{"text": t, "source": name} for t in kept]
        print(f"{name:28s} {len(kept):7d} texts {tokens:11,d} tokens ({len(dropped)} dropped: overlap private data)")
    random.Random(0).shuffle(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    total = sum(s["tokens"] for s in stats.values())
    summary = {"sources": stats, "total_tokens": total, "budget_tokens": args.budget_tokens,
               "epochs_at_budget": round(args.budget_tokens / total, 1), "file": str(out)}
    Path(args.stats or f"{out}.stats.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{total:,} tokens in {len(rows)} texts -> {out}; {args.budget_tokens:.0e} tokens = "
          f"{summary['epochs_at_budget']} epochs")


if __name__ == "__main__":
    main()
