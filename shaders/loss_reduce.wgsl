// IFTCL fused loss, forward 3/3: terms = (L_nce, L_twins) = the means over the N rows of
// stats[i].nce and stats[i].twins. One workgroup of 256 threads.

// Bindings read_write, constants and loss_params(): loss_common.wgsl.
@group(0) @binding(0) var<storage, read_write> stats: array<f32>;
@group(0) @binding(1) var<storage, read_write> terms: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<u32>;

var<workgroup> red_nce: array<f32, ROW_WG>;
var<workgroup> red_twins: array<f32, ROW_WG>;

@compute @workgroup_size(ROW_WG, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = loss_params().n;
    let t = lid.x;
    var nce = 0.0;
    var twins = 0.0;
    for (var i = t; i < n; i += ROW_WG) {
        nce += stats[i * 4u + 2u];
        twins += stats[i * 4u + 3u];
    }
    red_nce[t] = nce;
    red_twins[t] = twins;
    workgroupBarrier();
    for (var stride = ROW_WG / 2u; stride > 0u; stride = stride / 2u) {
        if t < stride {
            red_nce[t] += red_nce[t + stride];
            red_twins[t] += red_twins[t + stride];
        }
        workgroupBarrier();
    }
    if t == 0u {
        terms[0] = red_nce[0] / f32(n);
        terms[1] = red_twins[0] / f32(n);
    }
}
