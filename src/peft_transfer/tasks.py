"""Default tasks for the embedded data sets (templates and single-token label words for SmolLM2, GPT-2 and
RoBERTa-style BPE tokenizers)."""

from __future__ import annotations

from .errors import PeftTransferError
from .task import ClassificationTask


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


DEFAULT_TASKS = {"rotten_tomatoes": rotten_tomatoes_task, "bbc_news": bbc_news_task}


def get_task(name: str) -> ClassificationTask:
    """A default task by name (the name of its embedded data set)."""
    if name not in DEFAULT_TASKS:
        raise PeftTransferError(f"Unknown task {name!r}; default tasks: {sorted(DEFAULT_TASKS)}. Or give a template "
                                "and label words.")
    return DEFAULT_TASKS[name]()
