// pool.cu: max pooling and global average pooling (NCHW, fp32) for ema4j's training API. The formulas are those of
// dev.ema4j.nn.NnOps:
//
//   maxpool_forward_f32       y[n,c,p,q] = max over the k x k window at (p*k, q*k); argmax[n,c,p,q] = the in-plane
//                             index h*W + w of the window's first maximum in row-major order, as a float
//   maxpool_backward_f32      dx = 0 but at each window's argmax, which gets dy (rows and columns past the last
//                             whole window get 0)
//   global_avg_pool_forward_f32   y[n,c] = mean over the plane (fp32 sum in index order, then / (H*W))
//   global_avg_pool_backward_f32  dx[n,c,h,w] = dy[n,c] / (H*W)
//
// One thread per output element (forward) or input element (backward), grid-stride: any grid works. Max pooling and
// the average pool's gradient equal the Java CPU backend's bit for bit; the average sums in another order than Java
// (within the conformance suite's REDUCTION tolerance). No contraction (NOTE: [no-contraction], native/build-ptx.sh).
// Build: native/build-ptx.sh. Check: the NnOps conformance suite.

// planes = N*C; the input planes are h x w, the output planes (h/k) x (w/k).
extern "C" __global__ void maxpool_forward_f32(const float* x, float* y, float* argmax, int planes, int h, int w,
                                               int k) {
    const int ph = h / k;
    const int pw = w / k;
    const long long outputs = static_cast<long long>(planes) * ph * pw;
    for (long long o = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; o < outputs;
         o += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long plane = o / (ph * pw);
        const int pq = static_cast<int>(o - plane * ph * pw);
        const int p = pq / pw;
        const int q = pq - p * pw;
        const float* xp = x + plane * h * w;
        int best = p * k * w + q * k;
        for (int i = 0; i < k; ++i) {
            for (int j = 0; j < k; ++j) {
                const int at = (p * k + i) * w + q * k + j;
                if (xp[at] > xp[best]) {
                    best = at;
                }
            }
        }
        y[o] = xp[best];
        argmax[o] = static_cast<float>(best);
    }
}

extern "C" __global__ void maxpool_backward_f32(const float* argmax, const float* dy, float* dx, int planes, int h,
                                                int w, int k) {
    const int ph = h / k;
    const int pw = w / k;
    const long long inputs = static_cast<long long>(planes) * h * w;
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < inputs;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long plane = e / (h * w);
        const int at = static_cast<int>(e - plane * h * w);
        const int p = at / w / k;
        const int q = at % w / k;
        float g = 0.f;
        if (p < ph && q < pw) {
            const long long o = (plane * ph + p) * pw + q;
            if (static_cast<int>(argmax[o]) == at) {
                g = dy[o];
            }
        }
        dx[e] = g;
    }
}

extern "C" __global__ void global_avg_pool_forward_f32(const float* x, float* y, int planes, int plane) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < planes; i += gridDim.x * blockDim.x) {
        const float* xp = x + static_cast<long long>(i) * plane;
        float sum = 0.f;
        for (int j = 0; j < plane; ++j) {
            sum += xp[j];
        }
        y[i] = sum / plane;
    }
}

extern "C" __global__ void global_avg_pool_backward_f32(const float* dy, float* dx, int planes, int plane) {
    const long long n = static_cast<long long>(planes) * plane;
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        dx[e] = dy[e / plane] / plane;
    }
}
