"""The tasks of a run, loaded and checked before any training: an embedded task by name, or a task of your
own (`TaskSettings`: its data file or saved data set, text/label columns, split rule, template, label
words and public set)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, DatasetDict

from ..assets import load_labelled_dataset
from ..assets.data_files import check_text_cells, load_texts, read_data, require_columns
from ..assets.overlap import check_content_overlap, check_source_overlap
from ..errors import PeftTransferError
from ..provenance import text_fingerprint
from ..tasks.classification import ClassificationTask
from ..tasks.defaults import Task, get_task
from ..tasks.labels import encode_labels, warn_if_one_class
from ..tasks.template_escapes import typed_template
from .config import PipelineConfig, TaskSettings


@dataclass
class PreparedTask:
    """One task of a run, ready to use: its task (classification or generation), train and test sets, and
    public texts."""

    name: str
    task: Task
    train: Dataset
    test: Dataset
    public_name: str
    public: Dataset
    data_fingerprint: str | None = None  # content hash of a task of your own (recorded in run_config.json)
    private_texts: list[str] = dataclasses.field(default_factory=list)  # every text of the task (all splits)


def prepare_tasks(config: PipelineConfig, tokenizer, masked_lm: bool) -> list[PreparedTask]:
    """Load and check every task of `config` (data, labels, label words against `tokenizer`)."""
    prepared = [prepare_task(entry, config, f"tasks[{i}]") for i, entry in enumerate(config.tasks)]
    for p in prepared:
        try:
            p.task.tokenized(tokenizer, masked_lm=masked_lm)  # templates and single-token label words
        except PeftTransferError as exc:
            raise PeftTransferError(f"task {p.name!r}: {exc}") from None
    return prepared


def prepare_task(entry: str | TaskSettings, config: PipelineConfig, key: str) -> PreparedTask:
    fingerprint = None
    if isinstance(entry, str):
        task, data = get_task(entry), load_labelled_dataset(entry)
        train, test, public_name = data["train"], data["test"], config.public_sets[entry]
    else:
        task = ClassificationTask(name=entry.name, template=typed_template(entry.template),
                                  label_words=entry.label_words, class_names=entry.class_names,
                                  max_length=entry.max_length)
        train, test = _custom_splits(entry, task, config.seed, key)
        fingerprint = _fingerprint(train, test)
        public_name = entry.public
    private_texts = [*train["text"], *test["text"]]  # the test split is private too
    train = train.shuffle(seed=config.seed)
    if config.tune.train_examples:
        train = train.select(range(min(config.tune.train_examples, len(train))))
    test = test.select(range(min(config.test_examples or len(test), len(test))))
    warn_if_one_class(train, task, f"task {task.name!r}")
    check_source_overlap(public_name, task.name)
    try:
        public = load_texts(public_name, limit=config.transfer.num_public, seed=config.seed,
                            max_words=config.transfer.max_public_words or None,
                            setting=f"public_sets.{entry}" if isinstance(entry, str) else f"{key}.public")
    except PeftTransferError as exc:
        raise PeftTransferError(f"public set of task {task.name!r}: {exc}") from None
    check_content_overlap(public["text"], private_texts, public_name, task.name)
    return PreparedTask(task.name, task, train, test, public_name, public, fingerprint, private_texts)


def _custom_splits(entry: TaskSettings, task: ClassificationTask, seed: int, key: str) -> tuple[Dataset, Dataset]:
    data = _columns(entry.data, entry, task, f"{key}.data", key)
    if entry.test_data is not None:
        test = _columns(entry.test_data, entry, task, f"{key}.test_data", key)
        return _split(data, entry.train_split, f"{key}.data"), _split(test, entry.test_split, f"{key}.test_data")
    if isinstance(data, DatasetDict) and entry.test_split in data:
        return _split(data, entry.train_split, f"{key}.data"), data[entry.test_split]
    whole = _split(data, entry.train_split, f"{key}.data")
    size = entry.test_size if entry.test_size < 1 else int(entry.test_size)
    if (size if isinstance(size, int) else round(size * len(whole))) >= len(whole) or len(whole) < 2:
        raise PeftTransferError(f"config key {key + '.test_size'!r}: holding out {entry.test_size} of "
                                f"{len(whole)} examples leaves nothing to train on.")
    whole = whole.cast_column("label", ClassLabel(names=list(task.class_names)))
    try:
        parts = whole.train_test_split(test_size=size, seed=seed, stratify_by_column="label")
    except ValueError:  # a class too small to stratify
        parts = whole.train_test_split(test_size=size, seed=seed)
    return parts["train"], parts["test"]


def _split(data: Dataset | DatasetDict, split: str, key: str) -> Dataset:
    if not isinstance(data, DatasetDict):
        return data
    if split not in data:
        raise PeftTransferError(f"config key {key!r}: no {split!r} split (splits: {', '.join(data)}).")
    return data[split]


def _columns(path: str, entry: TaskSettings, task: ClassificationTask, key: str, task_key: str):
    """The data at `path` with `text` and `label` columns (renamed from the configured ones), labels as the task's
    class indices; the same checks as the commands' --data (`data_files.load_labelled`), naming the config keys."""
    data = read_data(path)
    parts = data if isinstance(data, DatasetDict) else {"": data}
    out = {}
    for name, part in parts.items():
        source = f"config key {key!r} ({path}" + (f", split {name!r})" if name else ")")
        require_columns(part, source, [(entry.text_column, f"text column with {task_key}.text_column"),
                                       (entry.label_column, f"label column with {task_key}.label_column")])
        part = part.select_columns(list(dict.fromkeys([entry.text_column, entry.label_column])))
        check_text_cells(part, entry.text_column, source, f"{task_key}.text_column")
        try:
            part = encode_labels(part, task, column=entry.label_column)
        except PeftTransferError as exc:
            raise PeftTransferError(f"{source}: {exc}") from None
        renames = {entry.text_column: "text", entry.label_column: "label"}
        out[name] = part.rename_columns({k: v for k, v in renames.items() if k != v})
    return DatasetDict(out) if isinstance(data, DatasetDict) else out[""]


def _fingerprint(train: Dataset, test: Dataset) -> str:
    rows = [f"{t}\t{y}" for part in (train, test) for t, y in zip(part["text"], part["label"])]
    return text_fingerprint(rows)
