"""The one rule for a Hub repo id, light enough for argparse (the CLI checks --push-to-hub before any work) and
shared by the library's push functions."""

from __future__ import annotations


def hub_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a Hub repo id ('org/name' or 'user/name'), or None when it is one."""
    if repo_id.count("/") != 1 or not all(part.strip() for part in repo_id.split("/")):
        return f"a Hub repo is 'org/name' (or 'user/name'), got {repo_id!r}"
    return None
