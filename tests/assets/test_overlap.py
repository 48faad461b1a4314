"""Public/private overlap: refused by source (embedded sets) and by content fingerprint, never showing texts."""

import itertools

import pytest

from peft_transfer import PeftTransferError
from peft_transfer.assets import PRIVATE_DATASETS, PUBLIC_TEXT_SETS, load_labelled_dataset, load_public_texts
from peft_transfer.assets.overlap import check_content_overlap, check_source_overlap

PRIVATE = ["My neighbour Zoltan Kovacs told me his account number at the clinic on Elm Street.",
           "The soup was cold and the waiter rude, said the inspector in her report."]


def test_bbc_articles_cannot_be_public_for_bbc_news():
    for public in ("bbc_articles", "wikipedia+bbc_articles"):
        with pytest.raises(PeftTransferError, match="'bbc_articles' comes from the same source .* 'bbc_news'"):
            check_source_overlap(public, "bbc_news")
    check_source_overlap("bbc_articles", "rotten_tomatoes")  # another task: fine
    check_source_overlap("my_texts.csv", "bbc_news")  # unknown source: only the content check can tell
    check_source_overlap("movie_plots", "my_custom_task")


def test_content_overlap_is_found_in_cut_and_recased_texts_and_reported_by_count():
    public = ["A film about a dog.", PRIVATE[0].upper(), " ".join(PRIVATE[1].split()[:9])]
    with pytest.raises(PeftTransferError, match="2 of the 3 texts of the public set 'pub'") as info:
        check_content_overlap(public, PRIVATE, "pub", "reviews")
    assert "Zoltan" not in str(info.value) and "soup" not in str(info.value)
    check_content_overlap(["A film about a dog.", "My neighbour Zoltan Kovacs told me a story"], PRIVATE, "pub", "r")


def test_embedded_public_sets_overlap_only_their_own_corpus():
    """Every embedded public set against every embedded private task (all splits), by content."""
    private = {name: [t for split in load_labelled_dataset(name).values() for t in split["text"]]
               for name in PRIVATE_DATASETS}
    publics = {name: load_public_texts(name)["text"] for name in PUBLIC_TEXT_SETS}
    for public, task in itertools.product(PUBLIC_TEXT_SETS, PRIVATE_DATASETS):
        texts = publics[public]
        if (public, task) == ("bbc_articles", "bbc_news"):
            with pytest.raises(PeftTransferError, match="2125 of the 2125 texts"):
                check_content_overlap(texts, private[task], public, task)
        else:
            check_content_overlap(texts, private[task], public, task)
