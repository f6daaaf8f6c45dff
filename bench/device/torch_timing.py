"""CUDA-event timing shared by the PyTorch baselines (torch_ema.py, torch_train.py)."""
import torch


def timed(fn, reps=10, warmup=3, repeats=5):
    """Milliseconds per call of fn: the best of `repeats` runs of `reps` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / reps)
    return best
