"""Export a merged proxy: a Hugging Face folder, ``demix_recipe.json`` and a mergekit YAML.

Everything is written into a temporary sibling folder and renamed at the end, so a failure leaves
nothing behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from demix_core.data.tokenizer import copy_tokenizer
from demix_core.errors import CheckpointError, OutputError
from demix_core.io.atomic import atomic_dir, check_output, refuse_inputs
from demix_core.io.checkpoints import build_model, load_into, save_model
from demix_core.merge.registry import get_method
from demix_core.merge.resident import ResidentComponents
from demix_core.mixing.mixture import Mixture

RECIPE_FILE = "demix_recipe.json"
MERGEKIT_FILE = "mergekit.yaml"
_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def recipe(
    resident: ResidentComponents, mixture: Mixture, *, method: str = "linear",
    params: Mapping[str, float] | None = None, seed: int = 0, hashes: bool = True,
) -> dict[str, Any]:
    """The recipe of a merge: components (name, path, weights hash), weights, method and parameters."""
    m = get_method(method, seed=seed, params=params)
    mixture = resident.mixture(mixture)  # in the components' order, whatever order it came in
    comps = []
    for name, ckpt, w in zip(resident.names, resident.checkpoints, mixture.weights):
        comps.append({
            "name": name, "path": str(ckpt.path.resolve()), "weight": w,
            "sha256": ckpt.weights_hash() if hashes else None, "tokenizer_sha256": ckpt.tokenizer_hash,
        })
    base = resident.base_checkpoint
    return {
        "format": "demix-recipe/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mixture": mixture.as_dict(),
        "components": comps,
        "base": None if base is None else {
            "path": str(base.path.resolve()), "sha256": base.weights_hash() if hashes else None},
        **m.describe(),
        "dtype": _DTYPE_NAMES.get(resident.dtype, str(resident.dtype)),
    }


def mergekit_yaml(
    resident: ResidentComponents, mixture: Mixture, *, method: str = "linear",
    params: Mapping[str, float] | None = None, seed: int = 0,
) -> str:
    """A mergekit configuration reproducing the merge (same method, weights and parameters)."""
    m = get_method(method, seed=seed, params=params)
    mixture = resident.mixture(mixture)
    base = resident.base_checkpoint
    cfg = m.mergekit_config(
        mixture.weights, [str(c.path.resolve()) for c in resident.checkpoints],
        None if base is None else str(base.path.resolve()),
        _DTYPE_NAMES.get(resident.dtype, "float32"),
    )
    return yaml.safe_dump(cfg, sort_keys=False)


def export_merged(
    resident: ResidentComponents, mixture: Mixture, out: str | os.PathLike[str], *,
    method: str = "linear", params: Mapping[str, float] | None = None, seed: int = 0,
    force: bool = False,
) -> Path:
    """Merge and write a loadable Hugging Face folder with its recipe and mergekit YAML, atomically.

    Args:
        resident: The resident components.
        mixture: The weights.
        out: The output folder.
        method: Merge method name.
        params: Method parameters.
        seed: Seed for random masks.
        force: Replace an existing ``out``.

    Returns:
        The output folder.

    Raises:
        OutputError: ``out`` exists without ``force``, or is (or holds) a component or the base.
        CheckpointError: Writing failed (disk full, permissions, a component file gone); ``out`` is as it was.
    """
    check_output(out, force=force)
    inputs = {f"component {n!r}": c.path for n, c in zip(resident.names, resident.checkpoints)}
    if resident.base_checkpoint is not None:
        inputs["base"] = resident.base_checkpoint.path
    refuse_inputs(out, inputs)
    mixture = resident.mixture(mixture)
    state = resident.merged_state(mixture, method=method, params=params, seed=seed)
    try:
        with atomic_dir(out, force=force) as tmp:
            model = build_model(resident.checkpoints[0], device="cpu", dtype=resident.dtype)
            load_into(model, {k: v.to("cpu") for k, v in state.items()}, source="merge")
            save_model(model, tmp)
            copy_tokenizer(resident.checkpoints[0].path, tmp)
            rec = recipe(resident, mixture, method=method, params=params, seed=seed)
            (tmp / RECIPE_FILE).write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")
            (tmp / MERGEKIT_FILE).write_text(
                mergekit_yaml(resident, mixture, method=method, params=params, seed=seed), encoding="utf-8"
            )
    except OutputError as exc:  # raised by atomic_dir for a failed write; the output is left as it was
        raise CheckpointError(f"exporting to {out} failed: {exc}") from None
    except OSError as exc:  # a component file gone mid-export, read outside atomic_dir's own writes
        raise CheckpointError(
            f"exporting to {out} failed ({exc}); nothing was written there: check disk space, "
            "permissions and the component folders, then retry"
        ) from None
    return Path(out)
