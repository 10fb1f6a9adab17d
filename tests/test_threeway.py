"""The line merge revert uses to take one edit out from under another (hdrfix/core/threeway.py)."""

from hdrfix.core.threeway import merge

BASE = b"a = 1\nb = 2\nc = 3\nd = 4\n"


def test_an_edit_on_the_line_next_to_a_patched_line_is_kept():
    # ours: the patch on line b taken out again; theirs: the user's edit on line c right below it.
    # diff3-style merges (merge3) call touching ranges a conflict; revert needs both kept.
    patched = b"a = 1\nb = 2  # patched\nc = 3\nd = 4\n"
    user = b"a = 1\nb = 2  # patched\nc = 30\nd = 4\n"
    assert merge(patched, BASE, user) == b"a = 1\nb = 2\nc = 30\nd = 4\n"


def test_edits_on_separate_lines_both_land():
    ours = b"a = 1\nb = 20\nc = 3\nd = 4\n"
    theirs = b"a = 1\nb = 2\nc = 3\nd = 40\n"
    assert merge(BASE, ours, theirs) == b"a = 1\nb = 20\nc = 3\nd = 40\n"


def test_two_edits_of_one_line_are_refused():
    assert merge(BASE, b"a = 1\nb = 5\nc = 3\nd = 4\n", b"a = 1\nb = 6\nc = 3\nd = 4\n") is None


def test_two_insertions_at_one_place_are_refused():
    ours = b"a = 1\nx = 0\nb = 2\nc = 3\nd = 4\n"
    theirs = b"a = 1\ny = 0\nb = 2\nc = 3\nd = 4\n"
    assert merge(BASE, ours, theirs) is None


def test_an_insertion_beside_a_replaced_line_goes_where_it_stands():
    ours = b"a = 1\nb = 2\nnew = 0\nc = 3\nd = 4\n"
    theirs = b"a = 1\nb = 22\nc = 3\nd = 4\n"
    assert merge(BASE, ours, theirs) == b"a = 1\nb = 22\nnew = 0\nc = 3\nd = 4\n"


def test_each_line_keeps_its_own_ending():
    base = b"a = 1\r\nb = 2\nc = 3\r\n"
    ours = b"a = 1\r\nb = 20\nc = 3\r\n"
    theirs = b"a = 1\r\nb = 2\nc = 30\r\n"
    assert merge(base, ours, theirs) == b"a = 1\r\nb = 20\nc = 30\r\n"
