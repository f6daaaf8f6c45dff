package dev.ema4j.bench;

import java.util.ArrayList;
import java.util.List;

/** Element counts of the 161 parameter tensors of torchvision's ResNet-50 (25,557,032 parameters), in order. */
public final class ResNet50 {

    private ResNet50() {
    }

    /** The tensor sizes: stem, 16 bottleneck blocks (3, 4, 6, 3), classifier. */
    public static long[] tensorSizes() {
        List<Long> sizes = new ArrayList<>();
        conv(sizes, 64, 3, 7);
        int in = 64;
        int[] blocks = {3, 4, 6, 3};
        for (int stage = 0; stage < 4; stage++) {
            int planes = 64 << stage;
            for (int b = 0; b < blocks[stage]; b++) {
                conv(sizes, planes, in, 1);
                conv(sizes, planes, planes, 3);
                conv(sizes, planes * 4, planes, 1);
                if (b == 0) {
                    conv(sizes, planes * 4, in, 1);  // downsample
                }
                in = planes * 4;
            }
        }
        sizes.add(1000L * 2048);
        sizes.add(1000L);
        return sizes.stream().mapToLong(Long::longValue).toArray();
    }

    /** A bias-free convolution followed by BatchNorm (weight, bias). */
    private static void conv(List<Long> sizes, int out, int in, int kernel) {
        sizes.add((long) out * in * kernel * kernel);
        sizes.add((long) out);
        sizes.add((long) out);
    }
}
