"""One decoding step with fixed shapes, so that a GPU can replay it as a CUDA graph.

At batch 1 a decoding step of a 0.5B model is ~25 layers × ~20 small kernels. On a GPU each launch
costs a few microseconds of Python and driver time, about as long as the kernel itself: the step is
bound by launches, not by reading the weights. A CUDA graph records the launches of one step once
and replays all of them with a single call.

A graph replays the same kernels on the same addresses with the same shapes, so the step below
changes nothing between tokens but the *contents* of tensors it owns:
  - the new tokens, their positions and the cache slot are copied into fixed input tensors;
  - k and v go into the cache at that slot with `index_copy_` (a tensor index, not a Python slice);
  - attention reads the whole preallocated cache, with a mask that hides the slots not written yet
    (and the left padding), instead of a prefix that grows by one each step.

Without a graph (on CPU, or `graph=False`) the same fixed-shape step runs eagerly: it is what the CPU
tests compare, token for token, with the ordinary step. On a CPU it is no faster (it attends over the
whole cache), so the sampler uses it only for graphs.
"""
import torch

from common.errors import PhysloraError
from model.transformer import KVCache, Transformer


class DecodeStep:
    """step(tokens, positions, slot) -> (batch, vocab) logits for one new token per row.

    is_real: (batch, cache length) booleans, False at left-padding slots. Rows can't leave the batch:
    the graph's shapes are fixed.
    """

    WARMUP_STEPS = 2  # on a side stream before capture: cuBLAS workspaces, Triton compilation and autotuning

    def __init__(self, model: Transformer, cache: KVCache, is_real: torch.Tensor, graph: bool):
        if graph and is_real.device.type != "cuda":
            raise PhysloraError(f"decoding with a CUDA graph needs the model on a CUDA device, not "
                                f"{is_real.device.type}: move it to CUDA or decode eagerly")
        self.model, self.cache, self.is_real, self.use_graph = model, cache, is_real, graph
        batch, length = is_real.shape
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=is_real.device)
        self.positions = torch.zeros(batch, 1, dtype=torch.long, device=is_real.device)
        self.slot = torch.zeros(1, dtype=torch.long, device=is_real.device)
        self.key_slots = torch.arange(length, device=is_real.device)
        self.graph, self.logits = None, None

    def _run(self) -> torch.Tensor:
        mask = (self.is_real & (self.key_slots <= self.slot))[:, None, None, :]
        return self.model(self.tokens, positions=self.positions, mask=mask, cache=self.cache,
                          cache_start=self.slot)[:, -1]

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, slot: int) -> torch.Tensor:
        self.tokens.copy_(tokens.view(-1, 1))
        self.positions.copy_(positions.view(-1, 1))
        self.slot.fill_(slot)
        if not self.use_graph:
            return self._run()
        if self.graph is None:
            self._capture()
        self.graph.replay()
        return self.logits

    def _capture(self):
        # The warm-up steps write this step's keys and values into the cache; the replay that
        # follows writes the same ones again, so nothing is left behind.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP_STEPS):
                self._run()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._run()
