// channel_walk.cuh: the element indices of one channel of an NCHW tensor, without an integer division per value;
// used by the per-channel reductions of cuda/batchnorm.cu and cuda/conv.cu.
#pragma once

// Calls f(j) for the values i = first, first + step, ... (i < end) of channel ch of an (N, C, H, W) tensor with
// c channels of `plane` = H*W values: value i of the channel is element j = (i / plane * c + ch) * plane + i % plane
// of the tensor. Three divisions before the loop; in it, j and i % plane advance by additions (a step of `step`
// values moves j by step / plane whole samples and step % plane values, plus one sample when the offset wraps).
template <class F>
__device__ __forceinline__ void for_each_in_channel(int first, int end, int step, int c, int ch, int plane, F f) {
    if (first >= end) {
        return;
    }
    const int step_samples = step / plane;
    const int step_offset = step - step_samples * plane;
    const long long jump = static_cast<long long>(step_samples) * c * plane + step_offset;
    const long long wrap = static_cast<long long>(c - 1) * plane;  // to the next sample's plane of channel ch
    const int sample = first / plane;
    int offset = first - sample * plane;
    long long j = (static_cast<long long>(sample) * c + ch) * plane + offset;
    for (int left = (end - 1 - first) / step + 1; left > 0; --left) {  // (i += step could overflow near 2^31)
        f(j);
        j += jump;
        offset += step_offset;
        if (offset >= plane) {
            offset -= plane;
            j += wrap;
        }
    }
}
