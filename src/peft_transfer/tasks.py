"""Default tasks for the embedded data sets (templates and single-token label words for SmolLM2, GPT-2 and
RoBERTa-style BPE tokenizers; a generation task, BBC article -> its title), and tasks from prompt records."""

from __future__ import annotations

from .errors import PeftTransferError
from .generation_task import GenerationTask
from .provenance import TaskRecord
from .task import ClassificationTask

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


def is_generation(task) -> bool:
    return isinstance(task, GenerationTask)


def task_from_record(record: TaskRecord) -> Task:
    """The task a prompt's provenance records (classification or generation)."""
    if record.kind == "generation":
        return GenerationTask.from_record(record)
    if record.kind != "classification":
        raise PeftTransferError(f"Unknown task kind {record.kind!r} in the prompt's task record.")
    return ClassificationTask.from_record(record)


def get_task(name: str) -> Task:
    """A default task by name (the name of its embedded data set)."""
    if name not in DEFAULT_TASKS:
        raise PeftTransferError(f"Unknown task {name!r}; default tasks: {sorted(DEFAULT_TASKS)}. Or give a template "
                                "and label words.")
    return DEFAULT_TASKS[name]()
