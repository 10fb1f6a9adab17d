"""The line merge revert uses to take one edit out from under another (hdrfix/core/threeway.py)."""

import pytest

from hdrfix.core.threeway import merge

BASE = b"a = 1\nb = 2\nc = 3\nd = 4\n"
PATCHED = b"a = 1\nb = 2  # patched\nc = 3\nd = 4\n"


@pytest.mark.parametrize(
    "base, ours, theirs, merged",
    [
        # the patch on line b taken out, the user's edit on line c right below it kept:
        # diff3-style merges (merge3) call touching ranges a conflict, revert needs both
        (
            PATCHED,
            BASE,
            b"a = 1\nb = 2  # patched\nc = 30\nd = 4\n",
            b"a = 1\nb = 2\nc = 30\nd = 4\n",
        ),
        # an insertion right after a replaced line goes where it stands (merge3: conflict)
        (
            BASE,
            b"a = 1\nb = 2\nnew = 0\nc = 3\nd = 4\n",
            b"a = 1\nb = 22\nc = 3\nd = 4\n",
            b"a = 1\nb = 22\nnew = 0\nc = 3\nd = 4\n",
        ),
        (
            BASE,
            b"a = 1\nb = 20\nc = 3\nd = 4\n",
            b"a = 1\nb = 2\nc = 3\nd = 40\n",
            b"a = 1\nb = 20\nc = 3\nd = 40\n",
        ),
        # each line keeps its own ending in a file that mixes them
        (
            b"a = 1\r\nb = 2\nc = 3\r\n",
            b"a = 1\r\nb = 20\nc = 3\r\n",
            b"a = 1\r\nb = 2\nc = 30\r\n",
            b"a = 1\r\nb = 20\nc = 30\r\n",
        ),
    ],
)
def test_changes_on_separate_lines_both_land(base, ours, theirs, merged):
    assert merge(base, ours, theirs) == merged


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (b"a = 1\nb = 5\nc = 3\nd = 4\n", b"a = 1\nb = 6\nc = 3\nd = 4\n"),  # one line, two edits
        (b"a = 1\nx = 0\nb = 2\nc = 3\nd = 4\n", b"a = 1\ny = 0\nb = 2\nc = 3\nd = 4\n"),  # order?
    ],
)
def test_changes_that_collide_are_refused(ours, theirs):
    assert merge(BASE, ours, theirs) is None
