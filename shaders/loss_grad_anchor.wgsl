// IFTCL fused loss, backward 1/2: the gradient for the anchors.
//
// With the softmax P (written over the logits by loss_rows.wgsl; 0 for the own fraternal twin
// and masked queue slots) and the incoming gradient (g_nce, g_twins) of (L_nce, L_twins):
//   dL/da_i = g_nce / (N tau) * (sum_c P[i, c] cand_c - p_i) + g_twins * coef_i * f_i
// One invocation: R = 4 anchor rows x one vec4 of dimensions; the candidates walked in order,
// so a workgroup reads each candidate row once, contiguously. No barriers.

// Bindings read_write, constants and loss_params(): loss_common.wgsl.
@group(0) @binding(0) var<storage, read_write> prob: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> f: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> grad_terms: array<f32>;
@group(0) @binding(6) var<storage, read_write> params: array<u32>;
@group(0) @binding(7) var<storage, read_write> grad_a: array<vec4<f32>>;

@compute @workgroup_size(MATRIX_WG, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let lp = loss_params();
    let n = lp.n;
    let d4 = lp.d4;
    let kq = lp.k;
    let use_f = lp.use_f;
    let nf = n + n * use_f;
    let tau = lp.tau;

    let k = wg.x * MATRIX_WG + lid.x;
    if k >= d4 {
        return;
    }
    let row0 = wg.y * R;
    let rows = four_rows(row0, n - 1u, lp.m);
    let b0 = rows.x;
    let b1 = rows.y;
    let b2 = rows.z;
    let b3 = rows.w;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var c = 0u; c < n; c++) {
        let cv = p[c * d4 + k];
        acc0 += prob[b0 + c] * cv;
        acc1 += prob[b1 + c] * cv;
        acc2 += prob[b2 + c] * cv;
        acc3 += prob[b3 + c] * cv;
    }
    if use_f == 1u {
        for (var c = 0u; c < n; c++) {
            let cv = f[c * d4 + k];
            let col = n + c;
            acc0 += prob[b0 + col] * cv;
            acc1 += prob[b1 + col] * cv;
            acc2 += prob[b2 + col] * cv;
            acc3 += prob[b3 + col] * cv;
        }
    }
    for (var c = 0u; c < kq; c++) {
        let cv = q[c * d4 + k];
        let col = nf + c;
        acc0 += prob[b0 + col] * cv;
        acc1 += prob[b1 + col] * cv;
        acc2 += prob[b2 + col] * cv;
        acc3 += prob[b3 + col] * cv;
    }

    let scale = grad_terms[0] / (f32(n) * tau);
    let g_twins = grad_terms[1];
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < R; r++) {
        let row = row0 + r;
        if row < n {
            var g = scale * (accs[r] - p[row * d4 + k]);
            if use_f == 1u {
                g += g_twins * stats[row * 4u + 1u] * f[row * d4 + k];
            }
            grad_a[row * d4 + k] = g;
        }
    }
}
