"""The parameter shapes of the GPU EMA benchmarks, without PyTorch (GpuEmaBenchmark.sizes, DeviceQuickBench.sizes):
flat25M, one tensor of 2.5e7 fp32; resnet50, torchvision ResNet-50's 161 parameter tensors (dev.ema4j.bench.ResNet50);
flat1G, one tensor of 1e9; tiny, three small tensors for dry runs."""


def resnet50_sizes():
    sizes = []

    def conv(out, inp, k):
        sizes.extend([out * inp * k * k, out, out])

    conv(64, 3, 7)
    inp = 64
    for stage, blocks in enumerate([3, 4, 6, 3]):
        planes = 64 << stage
        for b in range(blocks):
            conv(planes, inp, 1)
            conv(planes, planes, 3)
            conv(planes * 4, planes, 1)
            if b == 0:
                conv(planes * 4, inp, 1)
            inp = planes * 4
    sizes.extend([1000 * 2048, 1000])
    return sizes


SHAPES = {"flat25M": [25_000_000], "resnet50": resnet50_sizes(), "flat1G": [1_000_000_000],
          "tiny": [100_000, 4_099, 37]}
