// IFTCL fused loss, forward 2/3: per anchor row i (one workgroup of 256 threads each),
// the max-subtracted log-sum-exp over the row's logits (own fraternal twin and masked queue
// slots left out) and the row's terms:
//   stats[i] = (lse_i, dL_twins/ds(a_i,f_i), nce_i = lse_i - s_ii, twins_i)
// with target_i = s(a_i,p_i) - beta r_i and
//   pull:      g = max(0, target - s(a_i,f_i)), twins_i = g^2, dL/ds = -2 g / N
//   two-sided: u = s(a_i,f_i) - target,         twins_i = u^2, dL/ds =  2 u / N
// Then the row is overwritten with the softmax P[i, c] = exp(s[i, c] - lse_i) (0 for the own
// fraternal twin and masked slots): what the backward kernels read.

// Bindings read_write, constants and loss_params(): loss_common.wgsl.
@group(0) @binding(0) var<storage, read_write> s: array<f32>;
@group(0) @binding(1) var<storage, read_write> ratio: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<u32>;

const MASK_BELOW: f32 = -1.0e38;
const NEG_HUGE: f32 = -3.4e38;

var<workgroup> red_max: array<f32, ROW_WG>;
var<workgroup> red_sum: array<f32, ROW_WG>;

@compute @workgroup_size(ROW_WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lp = loss_params();
    let n = lp.n;
    let use_f = lp.use_f;
    let two_sided = lp.two_sided;
    let m = lp.m;
    let tau = lp.tau;
    let beta = lp.beta;

    let i = wg.x;
    let t = lid.x;
    let own = select(0xffffffffu, n + i, use_f == 1u);
    let base = i * m;

    // Online (max, sum of exp) over this thread's columns.
    var mx = NEG_HUGE;
    var sm = 0.0;
    for (var c = t; c < m; c += ROW_WG) {
        let v = s[base + c];
        if c != own && v > MASK_BELOW {
            if v > mx {
                sm = sm * exp(mx - v) + 1.0;
                mx = v;
            } else {
                sm += exp(v - mx);
            }
        }
    }
    red_max[t] = mx;
    red_sum[t] = sm;
    workgroupBarrier();
    for (var stride = ROW_WG / 2u; stride > 0u; stride = stride / 2u) {
        if t < stride {
            let m1 = red_max[t];
            let m2 = red_max[t + stride];
            let mm = max(m1, m2);
            red_sum[t] = red_sum[t] * exp(m1 - mm) + red_sum[t + stride] * exp(m2 - mm);
            red_max[t] = mm;
        }
        workgroupBarrier();
    }
    let lse = red_max[0] + log(red_sum[0]);
    // The diagonal entries, read by everyone before anyone overwrites the row.
    let s_ii = s[base + i];
    var s_af = 0.0;
    if use_f == 1u {
        s_af = s[base + n + i] * tau;
    }
    storageBarrier();
    workgroupBarrier();

    for (var c = t; c < m; c += ROW_WG) {
        let v = s[base + c];
        var pv = 0.0;
        if c != own && v > MASK_BELOW {
            pv = exp(v - lse);
        }
        s[base + c] = pv;
    }

    if t == 0u {
        var coef = 0.0;
        var twins = 0.0;
        if use_f == 1u {
            let target_sim = s_ii * tau - beta * ratio[i];
            if two_sided == 1u {
                let u = s_af - target_sim;
                twins = u * u;
                coef = 2.0 * u / f32(n);
            } else {
                let g = max(0.0, target_sim - s_af);
                twins = g * g;
                coef = -2.0 * g / f32(n);
            }
        }
        stats[i * 4u] = lse;
        stats[i * 4u + 1u] = coef;
        stats[i * 4u + 2u] = lse - s_ii;
        stats[i * 4u + 3u] = twins;
    }
}
