// Shared by the five kernels of the fused IFTCL loss: kernels.rs puts this file in front of
// each of them. WGSL module-scope declarations may come in any order, so `loss_params` reads
// `params`, which each kernel declares at its own binding.
//
// Every binding of every kernel is read_write: cubecl may place several tensors in one wgpu
// buffer, and a buffer bound read-only and read-write in one dispatch is a usage conflict.

// Threads of the matrix kernels (logits, both gradients), and the rows each invocation
// handles.
const MATRIX_WG: u32 = 64u;
const R: u32 = 4u;
// Threads of the row kernels (row log-sum-exp, reduce).
const ROW_WG: u32 = 256u;
// The logit written for a queue slot that takes no part (empty or stale).
const MASKED: f32 = -3.0e38;

// The parameter buffer kernels.rs writes: n, d, k, use_f, two_sided, m, bits(tau), bits(beta).
struct LossParams {
    // Anchors N.
    n: u32,
    // Embedding width in vec4s (d / 4).
    d4: u32,
    // Queue rows K.
    k: u32,
    // 1 when fraternal twins take part.
    use_f: u32,
    // 1 for the two-sided Twins form, 0 for pull.
    two_sided: u32,
    // Logit columns M = N + N * use_f + K.
    m: u32,
    tau: f32,
    beta: f32,
}

fn loss_params() -> LossParams {
    return LossParams(params[0], params[1] / 4u, params[2], params[3], params[4], params[5],
                      bitcast<f32>(params[6]), bitcast<f32>(params[7]));
}

// The offsets (row * stride) of the R = 4 rows from `first`; rows past `last` repeat it:
// they are read and never stored.
fn four_rows(first: u32, last: u32, stride: u32) -> vec4<u32> {
    return vec4<u32>(min(first, last), min(first + 1u, last), min(first + 2u, last), min(first + 3u, last)) * stride;
}

// Columns of the twins (identical, then fraternal when used): N + N * use_f.
fn twin_columns(lp: LossParams) -> u32 {
    return lp.n + lp.n * lp.use_f;
}
