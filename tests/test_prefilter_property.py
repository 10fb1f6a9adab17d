"""Property-based (issue 20, item 2): a file the byte filter drops is never read again, so
whatever the analysis takes for a reconstruction, however it is spelled, must pass the filter,
and the file must be among :meth:`Repo.candidates`."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdrfix.core.repo import Repo
from hdrfix.kit.logdomain import analyse
from hdrfix.kit.logdomain.prefilter import may_exponentiate

FULLWIDTH = {c: chr(ord(c) - ord("a") + 0xFF41) for c in "abcdefghijklmnopqrstuvwxyz"}


def wide(name: str) -> str:
    """``name`` in fullwidth letters, which Python reads as ``name`` (NFKC)."""
    return "".join(FULLWIDTH.get(c, c) for c in name)


@st.composite
def exponential(draw, arg: str) -> tuple[str, str]:
    """(lines to put at the top of the module, an expression exponentiating ``arg``)."""
    module = draw(st.sampled_from(["torch", "np", "numpy", "math"]))
    name = draw(st.sampled_from(["exp", "exp", "expm1", "exp2"]))
    gap = draw(st.sampled_from(["", " ", " \\\n        ", "(\n        "]))
    shown = wide(name) if draw(st.integers(0, 4)) == 0 else name
    close = ")" if gap.startswith("(") else ""
    form = draw(
        st.sampled_from(
            ["call", "method", "pow", "star", "e_star", "getattr", "from_import", "assigned"]
        )
    )
    if form == "call":
        return "", f"{module}.{shown}{gap}({arg}){close}"
    if form == "method":
        return "", f"({arg}).{shown}{gap}(){close}"
    if form == "pow":
        pow_name = draw(st.sampled_from(["pow", "power", "float_power"]))
        e = draw(st.sampled_from(["math.e", "torch.e", "np.e", "2.718281828"]))
        return "", f"{module}.{pow_name}{gap}({e}, {arg}){close}"
    if form == "star":
        e = draw(st.sampled_from(["math.e", "torch.e", "np.e", "2.718281828"]))
        return "", f"{e} **{' ' if gap.startswith('(') else gap}({arg})"
    if form == "e_star":
        return f"from {module} import e as base_e\n", f"base_e ** ({arg})"
    if form == "getattr":
        literal = draw(
            st.sampled_from(
                [
                    f'"{name}"',
                    f'"{name[:1]}" "{name[1:]}"',
                    f"'{name[:2]}' \\\n        '{name[2:]}'",
                    '"\\x65' + name[1:] + '"',
                    f'"{name[:1]}"  # split\n        "{name[1:]}"',
                ]
            )
        )
        return "", f"getattr({module}, {literal})({arg})"
    alias = draw(st.sampled_from(["grow", "back", "undo_log"]))
    if form == "from_import":
        return f"from {module} import {shown} as {alias}\n", f"{alias}({arg})"
    return f"{alias} = {module}.{shown}\n", f"{alias}({arg})"


@st.composite
def trainer(draw) -> str:
    log = draw(st.sampled_from(["log_img", "Lw", "log_image"]))
    res = draw(st.sampled_from(["delta_log", "residual", "dl"]))
    inline = draw(st.booleans())
    head, exp = draw(exponential(f"{log} + {res}" if inline else "recon_log"))
    body = [f"        {res} = torch.tanh(self.net(x)) * 6.0"]
    if not inline:
        body.append(f"        recon_log = {log} + {res}")
    body.append(f"        return {exp}")
    return (
        "import math\n\nimport numpy as np\nimport numpy\nimport torch\n"
        + head
        + "\n\nclass Recon:\n"
        + f"    def step(self, {log}, x):\n"
        + "\n".join(body)
        + "\n"
    )


@contextlib.contextmanager
def one_file(source: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "recon.py").write_text(source, encoding="utf-8")
        yield root


def found(root: Path, *, filtered: bool) -> tuple[list, list]:
    """What the analysis finds; unfiltered, it looks at every function whatever its bytes."""
    with contextlib.ExitStack() as stack:
        if not filtered:
            stack.enter_context(
                mock.patch("hdrfix.kit.logdomain.reach.may_exponentiate", lambda raw: True)
            )
        analysis = analyse(Repo(root).python("recon.py"))
    return [s.key for s in analysis.sites], [(u.line, u.why) for u in analysis.unhandled]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trainer())
def test_what_the_analysis_sees_passes_the_byte_filter(source):
    with one_file(source) as root:
        unfiltered = found(root, filtered=False)
        if unfiltered != ([], []):
            assert may_exponentiate(source.encode("utf-8"))
            assert Repo(root).candidates((".py",), may_exponentiate) == ["recon.py"]
        assert found(root, filtered=True) == unfiltered


def test_the_spellings_drawn_are_sites():
    """The property above is not vacuous: spellings without ``exp`` in their bytes are sites."""
    for head, exp in [
        ("", 'getattr(torch, "e" "xp")(log_img + delta_log)'),
        ("", "torch.power (math.e, log_img + delta_log)"),
        ("", f"torch.{wide('exp')}(log_img + delta_log)"),
        (f"from torch import {wide('exp')} as grow\n", "grow(log_img + delta_log)"),
    ]:
        source = (
            f"import math\n\nimport torch\n{head}\n\nclass Recon:\n"
            "    def step(self, log_img, x):\n"
            "        delta_log = torch.tanh(self.net(x)) * 6.0\n"
            f"        return {exp}\n"
        )
        assert b"exp" not in source.encode("utf-8") or "power" in source
        with one_file(source) as root:
            assert found(root, filtered=False)[0], source
            assert Repo(root).candidates((".py",), may_exponentiate) == ["recon.py"]
