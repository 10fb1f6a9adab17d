"""The optimizer's state of a Lightning checkpoint, migrated with the weights, so that
``Trainer.fit(model, ckpt_path=migrated)`` resumes with its moments and its schedule.

torch saves an optimizer as ``param_groups`` (each a list of ids) and ``state`` (id -> moments);
on loading, a group's ids are matched, in order, to the parameters the new optimizer's group
holds. The patched model's ``configure_optimizers`` sees ``residual_output_scale`` where
``parameters()`` yields it: a module's own parameters come before its children's, so the new
parameter sits after the network's own parameters and before its first layer's. It goes into
the group of that neighbour, right beside it, with the optimizer's zero state (zero moments, the
neighbour's ``step``); every id is then renumbered in order, as torch numbers them.

The checkpoint holds no model, so the ids are matched to the state_dict's parameters by order:
one optimizer whose groups, concatenated, hold exactly the state_dict's parameters (buffers
such as a BatchNorm's running statistics excluded) in ``parameters()`` order, each moment
shaped like its parameter. Anything else is refused with one line; ``--weights-only`` then
migrates the weights alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hdrfix.lang.errors import HdrfixError

#: state_dict entries that are buffers, not parameters (torch.nn's normalisation layers).
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked")
HINT = "pass --weights-only to migrate the weights alone (then resume with a fresh optimizer)"


def parameter_keys(state: Mapping[str, Any]) -> list[str]:
    """The state_dict's parameters, in order: floating tensors that are not known buffers."""
    return [
        key
        for key, value in state.items()
        if key.rsplit(".", 1)[-1] not in BUFFER_NAMES and value.is_floating_point()
    ]


def _refuse(why: str, src: str) -> HdrfixError:
    return HdrfixError(f"optimizer_states cannot be migrated: {why}", src, hint=HINT)


def _new_position(params: Sequence[str], key: str) -> tuple[int, str]:
    """Where ``key`` (``<prefix>residual_output_scale``) enters ``params`` and the neighbour
    whose group it joins: after the network's own parameters, before its children's."""
    prefix = key[: len(key) - len(key.rsplit(".", 1)[-1])]
    mine = [i for i, k in enumerate(params) if k.startswith(prefix)]
    own = [i for i in mine if "." not in params[i][len(prefix) :]]
    if own:
        return own[-1] + 1, params[own[-1]]
    return mine[0], params[mine[0]]


def _zero_state(neighbour: Mapping[str, Any], shape: Any, src: str) -> dict[str, Any]:
    """The optimizer's state for a parameter it has never moved: zero moments, the group's step."""
    import torch

    zero: dict[str, Any] = {}
    for name, value in neighbour.items():
        if name == "step":
            zero[name] = value.clone() if isinstance(value, torch.Tensor) else value
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            zero[name] = torch.zeros(shape, dtype=value.dtype)
        else:
            raise _refuse(f"no zero state known for the optimizer's {name!r}", src)
    return zero


#: How many partial matches :func:`_match` tries before it calls the layout ambiguous.
SEARCH_BUDGET = 100_000


def _match(
    groups: list[dict[str, Any]],
    moments: Mapping[int, Any],
    params: Sequence[str],
    state: Mapping[str, Any],
    src: str,
) -> dict[int, str]:
    """Which parameter each id stands for. A group lists its parameters in ``parameters()``
    order (torch keeps the order it was given), but groups may interleave (the network in
    one, the layers around it in another): walking the parameters in order, each is the next
    id of some group whose moments have its shape. Exactly one such reading is accepted."""
    import torch

    def fits(i: int, key: str) -> bool:
        shapes = [
            v.shape for v in moments.get(i, {}).values() if isinstance(v, torch.Tensor) and v.dim()
        ]
        return all(shape == state[key].shape for shape in shapes)

    lists = [list(group.get("params", ())) for group in groups]
    at = [0] * len(lists)
    found: list[dict[int, str]] = []
    chosen: dict[int, str] = {}
    budget = [SEARCH_BUDGET]

    def walk(k: int) -> None:
        if k == len(params):
            found.append(dict(chosen))
            return
        for g, ids in enumerate(lists):
            if len(found) > 1 or budget[0] <= 0:
                return
            if at[g] < len(ids) and fits(ids[at[g]], params[k]):
                budget[0] -= 1
                chosen[ids[at[g]]] = params[k]
                at[g] += 1
                walk(k + 1)
                at[g] -= 1
                del chosen[ids[at[g]]]

    walk(0)
    if len(found) == 1:
        return found[0]
    if not found and budget[0] > 0:
        raise _refuse(
            "no reading of its groups gives each parameter moments of its shape "
            "(the groups are not in parameters() order)",
            src,
        )
    raise _refuse("its groups can be matched to the parameters in more than one way", src)


def migrate(
    checkpoint: dict[str, Any], params: Sequence[str], added: Mapping[str, Any], src: str
) -> list[str]:
    """Give each added parameter (key -> its tensor) its entry in ``optimizer_states``, in
    place; ``params`` are the state_dict's parameters before the migration. Returns what was
    done, in words; refuses (HdrfixError, one line) where the layout cannot be matched."""

    saved = checkpoint.get("optimizer_states")
    if not saved or not added:
        return []
    if not isinstance(saved, list) or len(saved) != 1:
        count = len(saved) if isinstance(saved, list) else "not a list of"
        raise _refuse(f"{count} optimizers; only one can be matched to the parameters", src)
    optimizer = saved[0]
    groups, moments = optimizer.get("param_groups"), optimizer.get("state")
    if not isinstance(groups, list) or not isinstance(moments, dict):
        raise _refuse("it has no param_groups and state (not a torch optimizer's)", src)
    ids = [i for group in groups for i in group.get("params", ())]
    if len(ids) != len(params):
        raise _refuse(
            f"the optimizer holds {len(ids)} parameters, the state_dict {len(params)} "
            "(a frozen or extra parameter): they cannot be matched by order",
            src,
        )
    key_of = _match(groups, moments, params, checkpoint["state_dict"], src)
    by_key = {key_of[i]: moments[i] for i in ids if i in moments}
    members = [[key_of[i] for i in group["params"]] for group in groups]
    done = []
    for key, tensor in added.items():
        position, neighbour = _new_position(params, key)
        group = next(g for g, keys in enumerate(members) if neighbour in keys)
        at = members[group].index(neighbour) + (1 if position > params.index(neighbour) else 0)
        members[group].insert(at, key)
        if neighbour in by_key:
            by_key[key] = _zero_state(by_key[neighbour], tensor.shape, src)
        zeros = ", ".join(n for n in by_key.get(key, {}) if n != "step") or "none yet"
        step = by_key.get(key, {}).get("step")
        done.append(
            f"optimizer {key}: group {group}, position {at}; zero {zeros}"
            + (f", step {float(step):g} (the group's)" if step is not None else "")
        )
    numbered = [key for keys in members for key in keys]
    new_id = {key: n for n, key in enumerate(numbered)}
    for group, keys in zip(groups, members, strict=True):
        group["params"] = [new_id[key] for key in keys]
    optimizer["state"] = {new_id[key]: value for key, value in by_key.items()}
    return done
