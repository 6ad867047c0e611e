// IFTCL fused loss, backward 2/2: the gradients for the identical and fraternal twins (the
// queue gets none: it is detached).
//   dL/dp_j = g_nce / (N tau) * (sum_i P[i, j] a_i - a_j)
//   dL/df_j = g_nce / (N tau) * sum_i P[i, N + j] a_i + g_twins * coef_j * a_j
// One invocation: R = 4 twin rows (of the first N + N*use_f columns of P) x one vec4 of
// dimensions, the anchors walked in order. No barriers.

// Every binding read_write: see loss_logits.wgsl.
@group(0) @binding(0) var<storage, read_write> prob: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grad_terms: array<f32>;
@group(0) @binding(4) var<storage, read_write> params: array<u32>;
@group(0) @binding(5) var<storage, read_write> grad_p: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> grad_f: array<vec4<f32>>;

const WG: u32 = 64u;
const R: u32 = 4u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let n = params[0];
    let d4 = params[1] / 4u;
    let use_f = params[3];
    let nf = n + n * use_f;
    let m = params[5];
    let tau = bitcast<f32>(params[6]);

    let k = wg.x * WG + lid.x;
    if k >= d4 {
        return;
    }
    let j0 = wg.y * R;
    let c0 = min(j0, nf - 1u);
    let c1 = min(j0 + 1u, nf - 1u);
    let c2 = min(j0 + 2u, nf - 1u);
    let c3 = min(j0 + 3u, nf - 1u);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var i = 0u; i < n; i++) {
        let av = a[i * d4 + k];
        let row = i * m;
        acc0 += prob[row + c0] * av;
        acc1 += prob[row + c1] * av;
        acc2 += prob[row + c2] * av;
        acc3 += prob[row + c3] * av;
    }

    let scale = grad_terms[0] / (f32(n) * tau);
    let g_twins = grad_terms[1];
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < R; r++) {
        let j = j0 + r;
        if j < n {
            grad_p[j * d4 + k] = scale * (accs[r] - a[j * d4 + k]);
        } else if j < nf {
            let jj = j - n;
            grad_f[jj * d4 + k] = scale * accs[r] + g_twins * stats[jj * 4u + 1u] * a[jj * d4 + k];
        }
    }
}
