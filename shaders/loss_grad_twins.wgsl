// IFTCL fused loss, backward 2/2: the gradients for the identical and fraternal twins (the
// queue gets none: it is detached).
//   dL/dp_j = g_nce / (N tau) * (sum_i P[i, j] a_i - a_j)
//   dL/df_j = g_nce / (N tau) * sum_i P[i, N + j] a_i + g_twins * coef_j * a_j
// One invocation: R = 4 twin rows (of the first N + N*use_f columns of P) x one vec4 of
// dimensions, the anchors walked in order. No barriers.

// Bindings read_write, constants and loss_params(): loss_common.wgsl.
@group(0) @binding(0) var<storage, read_write> prob: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grad_terms: array<f32>;
@group(0) @binding(4) var<storage, read_write> params: array<u32>;
@group(0) @binding(5) var<storage, read_write> grad_p: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> grad_f: array<vec4<f32>>;

@compute @workgroup_size(MATRIX_WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lp = loss_params();
    // This invocation's vec4 of dimensions; past the width, nothing to do.
    let k = wg.x * MATRIX_WG + lid.x;
    if k >= lp.d4 { return; }
    let n = lp.n;
    let d4 = lp.d4;
    let nf = twin_columns(lp);
    let j0 = wg.y * R;
    let c = four_rows(j0, nf - 1u, 1u);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var i = 0u; i < n; i++) {
        let av = a[i * d4 + k];
        let row = i * lp.m;
        acc0 += prob[row + c.x] * av;
        acc1 += prob[row + c.y] * av;
        acc2 += prob[row + c.z] * av;
        acc3 += prob[row + c.w] * av;
    }

    let scale = nce_grad_scale(lp);
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < R; r++) {
        let j = j0 + r;
        if j < n {
            grad_p[j * d4 + k] = scale * (accs[r] - a[j * d4 + k]);
        } else if j < nf {
            let jj = j - n;
            grad_f[jj * d4 + k] = scale * accs[r] + twins_grad_scale(jj) * a[jj * d4 + k];
        }
    }
}
