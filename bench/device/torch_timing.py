"""Timing shared by the PyTorch baselines (torch_ema.py, torch_train.py): CUDA events on a GPU, the wall clock after
a synchronization elsewhere (a CPU run of the scripts is only a check that they work)."""
import time

import torch


def timed(fn, reps=10, warmup=3, repeats=5, device="cuda"):
    """Milliseconds per call of fn: the best of `repeats` runs of `reps` calls, after `warmup` calls."""
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            torch.cuda.synchronize()
            best = min(best, start.elapsed_time(end) / reps)
        else:
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - t0) * 1e3 / reps)
    return best
