// Shared by the two backward kernels (after loss_common.wgsl): both bind the row stats written
// by loss_rows.wgsl and the incoming gradient (g_nce, g_twins) of (L_nce, L_twins).

// g_nce / (N tau): the factor of every InfoNCE gradient term.
fn nce_grad_scale(lp: LossParams) -> f32 {
    return grad_terms[0] / (f32(lp.n) * lp.tau);
}

// g_twins * dL_twins/ds(a_i, f_i) of row i: the factor of its Twins gradient term.
fn twins_grad_scale(i: u32) -> f32 {
    return grad_terms[1] * stats[i * 4u + 1u];
}
