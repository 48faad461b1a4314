"""Default tasks for the embedded data sets (templates and single-token label words for SmolLM2, GPT-2 and
RoBERTa-style BPE tokenizers; a generation task, BBC article -> its title), and tasks from prompt records."""

from __future__ import annotations

from ..errors import PeftTransferError
from ..provenance import TaskRecord
from .classification import ClassificationTask
from .generation import GenerationTask

Task = ClassificationTask | GenerationTask


def rotten_tomatoes_task() -> ClassificationTask:
    return ClassificationTask(
        name="rotten_tomatoes",
        template="Review: {text}\nSentiment:",
        label_words=[[" negative"], [" positive"]],
        class_names=["negative", "positive"],
        description="Classify the sentiment of the movie review as positive or negative.",
        max_length=128,
    )


def bbc_news_task() -> ClassificationTask:
    return ClassificationTask(
        name="bbc_news",
        template="Article: {text}\nTopic:",
        label_words=[[" business"], [" entertainment"], [" politics"], [" sport"], [" tech"]],
        class_names=["business", "entertainment", "politics", "sport", "tech"],
        description="Classify the topic of the news article: business, entertainment, politics, sport or tech.",
        max_length=160,
    )


def bbc_titles_task() -> GenerationTask:
    """BBC article body -> its title (the first line of each file); scored by ROUGE-L."""
    return GenerationTask(
        name="bbc_titles",
        template="Article: {text}\nTitle:",
        description="Write the title of the news article.",
        max_length=160,
        max_new_tokens=16,
    )


DEFAULT_TASKS = {"rotten_tomatoes": rotten_tomatoes_task, "bbc_news": bbc_news_task, "bbc_titles": bbc_titles_task}


def get_task(name: str) -> Task:
    """A default task by name (the name of its embedded data set)."""
    if name not in DEFAULT_TASKS:
        raise PeftTransferError(f"Unknown task {name!r}; embedded tasks: {sorted(DEFAULT_TASKS)}. For your own task "
                                "give its template and label words (--template and --label-words; in a `run` YAML "
                                "a task mapping, see `peft-transfer run --print-config`).")
    return DEFAULT_TASKS[name]()


def task_from_record(record: TaskRecord) -> Task:
    """The task a prompt records (`TaskRecord`, classification or generation): the embedded task itself when
    the record is one unchanged (its description and length limit are not recorded), else a task built from
    the record."""
    kind = getattr(record, "kind", "classification")
    if kind not in ("classification", "generation"):
        raise PeftTransferError(f"Unknown task kind {kind!r} in the prompt's task record.")
    if record.name in DEFAULT_TASKS:
        task = DEFAULT_TASKS[record.name]()
        same_words = kind == "generation" or task.label_words == [list(w) for w in record.label_words]
        if task.kind == kind and task.template == record.template and same_words:
            return task
    return GenerationTask.from_record(record) if kind == "generation" else ClassificationTask.from_record(record)
