"""Training checkpoints: everything a run needs to continue exactly where it stopped.

RUN/checkpoints/step-N/
    adapter_config.json, adapter_model.safetensors   the LoRA weights (PEFT format: usable as they are)
    trainer_state.pt   AdamW's moments and step counts, the optimizer step N (which fixes the learning
                       rate and the data position), torch's RNG states (LoRA dropout; one per process
                       under torchrun), the best validation loss so far

The data position needs no loader state: the batches of step N+1 are a pure function of
(seed, N+1) (see data/batching.py). A checkpoint is written as step-N.partial/ and renamed when
complete, so a crash mid-write never leaves a half checkpoint under a real name.
"""
import os
import re
import shutil
from typing import Optional

import torch

from common.errors import PhysloraError
from common.runs import PARTIAL
from lora.adapter import load_adapter, save_adapter

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"step-(\d+)")


def checkpoint_dir(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, CHECKPOINTS, f"step-{step}")


def rng_state() -> dict:
    """This process's RNG states, which LoRA dropout draws from."""
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def save_checkpoint(run_dir: str, step: int, model, optimizer, state: dict, base_model: str,
                    rng_states: list) -> str:
    """Write checkpoints/step-{step}/ atomically; `state` holds the loop's own values (e.g. best val loss),
    `rng_states` every process's rng_state(), in rank order."""
    final = checkpoint_dir(run_dir, step)
    partial = final + PARTIAL
    shutil.rmtree(partial, ignore_errors=True)  # left over from a crash
    save_adapter(model, partial, base_model=base_model)
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "rng": rng_states, **state},
               os.path.join(partial, STATE_FILE))
    shutil.rmtree(final, ignore_errors=True)  # a step re-run after resuming from an earlier checkpoint
    os.replace(partial, final)
    return final


def latest_checkpoint(run_dir: str) -> Optional[str]:
    """The complete checkpoint with the highest step, or None."""
    folder = os.path.join(run_dir, CHECKPOINTS)
    steps = [int(m.group(1)) for name in (os.listdir(folder) if os.path.isdir(folder) else ())
             if (m := _STEP_DIR.fullmatch(name))]
    return checkpoint_dir(run_dir, max(steps)) if steps else None


def load_checkpoint(folder: str, model, rank: int = 0) -> dict:
    """Put the checkpoint's LoRA into `model` (injecting it) and restore process `rank`'s RNG states (a
    process the run did not have keeps its own); returns the state.

    The optimizer is built afterwards, over the new LoRA parameters: load state["optimizer"] into it.
    """
    path = os.path.join(folder, STATE_FILE)
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError) as err:
        raise PhysloraError(f"{path}: unreadable checkpoint ({str(err).splitlines()[0]}); "
                            "delete this checkpoint folder to resume from the one before") from None
    load_adapter(model, folder)
    rng_states = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]  # older checkpoints: one
    if rank < len(rng_states):
        torch.set_rng_state(rng_states[rank]["cpu"])
        if "cuda" in rng_states[rank] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng_states[rank]["cuda"])
    return state


def prune_checkpoints(run_dir: str, keep: set) -> None:
    """Delete every checkpoint whose step is not in `keep` (the latest and the best are enough)."""
    folder = os.path.join(run_dir, CHECKPOINTS)
    for name in os.listdir(folder):
        match = _STEP_DIR.fullmatch(name)
        if match and int(match.group(1)) not in keep:
            shutil.rmtree(os.path.join(folder, name))
