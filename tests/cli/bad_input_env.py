"""What every bad-input table shares: the `env` of tiny models, prompts and files, and the one check.

A table is a list of rows (id, command line with {placeholders} from `env`, a regex the one error line must
match); `assert_one_clear_line` runs a row in-process (`cli.main`) and checks: exit status 2, exactly one
message line starting with "peft-transfer", the regex, and nothing written at the row's --out / --work-dir
when they did not exist before.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from datasets import Dataset, DatasetDict
from tiny_gguf import write_header_only_gguf
from tiny_models import CORPUS, make_model, make_tokenizer
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from peft_transfer import create_prompt_model, get_task, save_prompt
from peft_transfer.cli import main
from peft_transfer.student.layers import make_student

PROGRESS = re.compile(r"\[\d\d:\d\d")  # tqdm progress bars ("[00:00<?, ?it/s]") are not messages
TEXTS = ["a wonderful moving film", "a dull boring mess"] * 12
OUTPUT_FLAGS = ("--out", "--work-dir")


def _other_tokenizer(folder) -> None:
    """A real but different BPE tokenizer (another vocabulary) for the same tiny teacher."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([t[::-1] for t in CORPUS], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>") \
        .save_pretrained(folder)


def build_env(root: Path) -> dict[str, str]:
    """Tiny target (Llama, 4 layers), its 2-layer student, a prompt p_s and one file per kind of input."""
    tok = make_tokenizer()
    target = make_model("llama", num_layers=4)
    student = make_student(target, [0, 3])
    for name, model in (("target", target), ("student", student)):
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    save_prompt(create_prompt_model(student, tok, get_task("rotten_tomatoes"), num_virtual_tokens=4), str(root / "p_s"))
    Dataset.from_dict({"text": TEXTS, "label": [1, 0] * 12}).to_csv(root / "good.csv")
    Dataset.from_dict({"text": TEXTS[:4], "label": ["great", "negative", "meh", "positive"]}).to_csv(root / "odd.csv")
    Dataset.from_dict({"text": CORPUS[:30]}).to_csv(root / "public.csv")
    DatasetDict(train=Dataset.from_dict({"text": TEXTS, "label": [1, 0] * 12}),
                test=Dataset.from_dict({"text": TEXTS[:4], "label": [1, 0] * 2})).save_to_disk(root / "dict")
    (root / "corpus.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS[:40]))
    (root / "empty.csv").write_text("")
    (root / "header.csv").write_text("text,label\n")
    (root / "latin.csv").write_bytes("text,label\ncaf\xe9 cr\xe8me,1\n".encode("latin-1"))
    (root / "broken.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "label\n')
    (root / "plain").mkdir()
    (root / "plain" / "notes.txt").write_text("not a data set")
    (root / "a_file.txt").write_text("in the way")
    write_header_only_gguf(root / "rwkv.gguf", "rwkv6")
    _other_tokenizer(root / "other_tokenizer")
    yamls = {"bad_eps": "epsilons: [-1]\n", "imdb": "tasks: [imdb]\n", "alpha": "transfer: {alpha: 2}\n",
             "no_template": "tasks:\n  - {name: mine, data: x.csv, label_words: [' a', ' b'], public: movie_plots}\n",
             "broken": "tasks: [rotten_tomatoes\nseed: 1\n"}
    for name, text in yamls.items():
        (root / f"{name}.yaml").write_text(text)
    paths = {"tmp": root, "target": root / "target", "student": root / "student", "p_s": root / "p_s",
             "good_csv": root / "good.csv", "odd_labels_csv": root / "odd.csv", "public_csv": root / "public.csv",
             "dict_folder": root / "dict", "corpus": root / "corpus.jsonl", "empty_csv": root / "empty.csv",
             "header_csv": root / "header.csv", "latin_csv": root / "latin.csv", "broken_jsonl": root / "broken.jsonl",
             "plain": root / "plain", "a_file": root / "a_file.txt", "rwkv_gguf": root / "rwkv.gguf",
             "other_tokenizer": root / "other_tokenizer", **{f"{n}_yaml": root / f"{n}.yaml" for n in yamls}}
    return {k: str(v) for k, v in paths.items()}




def _outputs(argv: list[str]) -> list[Path]:
    return [Path(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg in OUTPUT_FLAGS]


def assert_one_clear_line(env: dict[str, str], capsys, command: str, message: str) -> None:
    """`command` is refused with exit 2 and one line matching `message`, and writes no new output folder."""
    argv = shlex.split(command.format(**env))
    fresh = [p for p in _outputs(argv) if not p.exists()]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("peft-transfer "), err
    assert re.search(message, lines[0].split(": error: ", 1)[1]), lines[0]
    written = [str(p) for p in fresh if p.exists()]
    assert not written, f"a refused command wrote {written}"
