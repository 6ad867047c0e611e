// IFTCL fused loss, backward 1/2: the gradient for the anchors.
//
// With the softmax P (written over the logits by loss_rows.wgsl; 0 for the own fraternal twin
// and masked queue slots) and the incoming gradient (g_nce, g_twins) of (L_nce, L_twins):
//   dL/da_i = g_nce / (N tau) * (sum_c P[i, c] cand_c - p_i) + g_twins * coef_i * f_i
// One invocation: R = 4 anchor rows x one vec4 of dimensions; the candidates walked in order,
// so a workgroup reads each candidate row once, contiguously (the branch in `candidate` is
// the same for every invocation of a workgroup). No barriers.

// Bindings read_write, constants and loss_params(): loss_common.wgsl.
@group(0) @binding(0) var<storage, read_write> prob: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> f: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> grad_terms: array<f32>;
@group(0) @binding(6) var<storage, read_write> params: array<u32>;
@group(0) @binding(7) var<storage, read_write> grad_a: array<vec4<f32>>;

// vec4 number k of candidate column c: [identical twins | fraternal twins | queue].
fn candidate(lp: LossParams, c: u32, k: u32) -> vec4<f32> {
    let nf = twin_columns(lp);
    if c < lp.n {
        return p[c * lp.d4 + k];
    } else if c < nf {
        return f[(c - lp.n) * lp.d4 + k];
    }
    return q[(c - nf) * lp.d4 + k];
}

@compute @workgroup_size(MATRIX_WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lp = loss_params();
    // This invocation's vec4 of dimensions; past the width, nothing to do.
    let k = wg.x * MATRIX_WG + lid.x;
    if k >= lp.d4 { return; }
    let row0 = wg.y * R;
    let b = four_rows(row0, lp.n - 1u, lp.m);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var c = 0u; c < lp.m; c++) {
        let cv = candidate(lp, c, k);
        acc0 += prob[b.x + c] * cv;
        acc1 += prob[b.y + c] * cv;
        acc2 += prob[b.z + c] * cv;
        acc3 += prob[b.w + c] * cv;
    }

    let scale = nce_grad_scale(lp);
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < R; r++) {
        let row = row0 + r;
        if row < lp.n {
            var g = scale * (accs[r] - p[row * lp.d4 + k]);
            if lp.use_f == 1u {
                g += twins_grad_scale(row) * f[row * lp.d4 + k];
            }
            grad_a[row * lp.d4 + k] = g;
        }
    }
}
