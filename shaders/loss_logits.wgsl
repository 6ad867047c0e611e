// IFTCL fused loss, forward 1/3: the logits of every anchor against every candidate.
//
// s[i, c] = (a_i . cand_c) / tau, cand = [identical twins p (N) | fraternal twins f (N, when
// used) | queue q (K)], written row-major [N, M], M = N + N*use_f + K. A queue entry whose
// mask is 0 (empty or stale slot) is written as MASKED so it drops out of every sum.
// The own fraternal twin (column N + i) keeps its raw value: the next kernel reads it for the
// Twins term and leaves it out of the log-sum-exp.
//
// One invocation: one candidate against R = 4 anchor rows, d walked in vec4 steps (d is a
// multiple of 4). No workgroup memory and no barriers: the 4 anchor rows are the same for the
// whole workgroup (cache-resident on a GPU, broadcast loads on a CPU rasteriser).

// Bindings read_write, constants and loss_params(): loss_common.wgsl.
@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> f: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> qmask: array<f32>;
@group(0) @binding(5) var<storage, read_write> s: array<f32>;
@group(0) @binding(6) var<storage, read_write> params: array<u32>;

@compute @workgroup_size(MATRIX_WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lp = loss_params();
    let n = lp.n;
    let d4 = lp.d4;
    let nf = twin_columns(lp);
    let m = lp.m;
    let inv_tau = 1.0 / lp.tau;

    let c = wg.x * MATRIX_WG + lid.x;
    if c >= m {
        return;
    }
    let row0 = wg.y * R;
    // Rows past the end read the last row and are not stored.
    let rows = four_rows(row0, n - 1u, d4);

    var acc = vec4<f32>(0.0);
    if c < n {
        let cb = c * d4;
        for (var k = 0u; k < d4; k++) {
            let cv = p[cb + k];
            acc += vec4<f32>(dot(a[rows.x + k], cv), dot(a[rows.y + k], cv), dot(a[rows.z + k], cv), dot(a[rows.w + k], cv));
        }
    } else if c < nf {
        let cb = (c - n) * d4;
        for (var k = 0u; k < d4; k++) {
            let cv = f[cb + k];
            acc += vec4<f32>(dot(a[rows.x + k], cv), dot(a[rows.y + k], cv), dot(a[rows.z + k], cv), dot(a[rows.w + k], cv));
        }
    } else {
        let cb = (c - nf) * d4;
        for (var k = 0u; k < d4; k++) {
            let cv = q[cb + k];
            acc += vec4<f32>(dot(a[rows.x + k], cv), dot(a[rows.y + k], cv), dot(a[rows.z + k], cv), dot(a[rows.w + k], cv));
        }
    }

    let masked = c >= nf && qmask[c - nf] < 0.5;
    for (var r = 0u; r < R; r++) {
        let row = row0 + r;
        if row < n {
            s[row * m + c] = select(acc[r] * inv_tau, MASKED, masked);
        }
    }
}
