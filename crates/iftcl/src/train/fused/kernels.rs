//! The WGSL kernels of `shaders/` launched on burn's CubeCL backend (wgpu runtime).
//!
//! Forward: `loss_logits` (a·candᵀ/τ, stale queue slots masked), `loss_rows` (row
//! log-sum-exp, per-row terms, then the softmax P written over the logits), `loss_reduce`
//! (means). Backward: `loss_grad_anchor` (P·cand) and `loss_grad_twins` (Pᵀ·a). Every kernel
//! binds at most 8 storage buffers, the WebGPU default limit, and reads rows as vec4 (d must
//! be a multiple of 4: every BERT width is).

use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};
use burn::tensor::{DType, Shape};

use super::ops::{FusedLossOps, LossSettings};

/// Threads of the matrix kernels (their `@workgroup_size(64)`).
const MATRIX_THREADS: u32 = 64;
/// Rows each matrix-kernel invocation handles (their `R`).
const ROWS_PER_THREAD: u32 = 4;
/// Threads of the row kernels (their `@workgroup_size(256)`).
const ROW_THREADS: u32 = 256;

/// WGSL files of `shaders/` as one kernel (its entry point is `main`), after the constants and
/// helpers all five share (`loss_common.wgsl`); the backward kernels also share
/// `loss_backward_common.wgsl`.
macro_rules! wgsl_kernel {
    ($name:ident, $($file:literal),+) => {
        struct $name;
        impl KernelSource for $name {
            fn source(&self) -> SourceTemplate {
                SourceTemplate::new(concat!(
                    include_str!("../../../../../shaders/loss_common.wgsl"),
                    $(include_str!(concat!("../../../../../shaders/", $file))),+
                ))
            }
            fn id(&self) -> KernelId {
                KernelId::new::<Self>()
            }
            fn lang(&self) -> &'static str {
                "wgsl"
            }
        }
    };
}

wgsl_kernel!(LogitsKernel, "loss_logits.wgsl");
wgsl_kernel!(RowsKernel, "loss_rows.wgsl");
wgsl_kernel!(ReduceKernel, "loss_reduce.wgsl");
wgsl_kernel!(GradAnchorKernel, "loss_backward_common.wgsl", "loss_grad_anchor.wgsl");
wgsl_kernel!(GradTwinsKernel, "loss_backward_common.wgsl", "loss_grad_twins.wgsl");

fn f32_input(t: CubeTensor, what: &str) -> CubeTensor {
    assert_eq!(t.dtype, DType::F32, "the fused loss takes f32 tensors ({what} is {:?})", t.dtype);
    into_contiguous(t)
}

fn empty_like(reference: &CubeTensor, shape: Shape) -> CubeTensor {
    let bytes = shape.num_elements().max(1) * DType::F32.size();
    let handle = reference.client.empty(bytes);
    CubeTensor::new_contiguous(reference.client.clone(), reference.device.clone(), shape, handle, DType::F32)
}

/// The parameter buffer every kernel reads: n, d, k, use_f, two_sided, m, bits(τ), bits(β).
fn params(reference: &CubeTensor, n: usize, d: usize, settings: &LossSettings) -> CubeTensor {
    let words: [u32; 8] = [
        n as u32,
        d as u32,
        settings.queue_rows as u32,
        settings.use_fraternal as u32,
        settings.two_sided as u32,
        settings.columns(n) as u32,
        settings.tau.to_bits(),
        settings.beta.to_bits(),
    ];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let handle = reference.client.create_from_slice(&bytes);
    CubeTensor::new_contiguous(reference.client.clone(), reference.device.clone(), Shape::from([8]), handle, DType::U32)
}

fn launch<K: KernelSource>(kernel: K, cube_dim: CubeDim, count: CubeCount, buffers: &[&CubeTensor]) {
    let client = buffers[0].client.clone();
    let bindings = buffers.iter().map(|t| t.handle.clone().binding()).collect();
    client.launch(Box::new(SourceKernel::new(kernel, cube_dim)), count, KernelArguments::new().with_buffers(bindings));
}

fn groups(extent: usize, per_group: u32) -> u32 {
    (extent as u32).div_ceil(per_group)
}

/// The embeddings both the forward and the backward kernels read, contiguous f32, with their
/// shapes checked.
struct Embeddings {
    a: CubeTensor,
    p: CubeTensor,
    f: CubeTensor,
    q: CubeTensor,
    /// Anchors N.
    n: usize,
    /// Width d.
    d: usize,
}

fn embeddings(a: CubeTensor, p: CubeTensor, f: CubeTensor, q: CubeTensor, settings: &LossSettings) -> Embeddings {
    let (a, p, f, q) = (f32_input(a, "a"), f32_input(p, "p"), f32_input(f, "f"), f32_input(q, "queue"));
    let (n, d) = check_shapes(&a, &p, &f, &q, settings);
    Embeddings { a, p, f, q, n, d }
}

fn check_shapes(a: &CubeTensor, p: &CubeTensor, f: &CubeTensor, q: &CubeTensor, settings: &LossSettings) -> (usize, usize) {
    let [n, d] = [a.meta.shape()[0], a.meta.shape()[1]];
    assert!(n > 0 && d > 0, "the fused loss needs at least one anchor of width > 0");
    assert!(d % 4 == 0, "the fused loss reads rows as vec4: the width {d} must be a multiple of 4");
    assert_eq!(p.meta.shape().as_slice(), &[n, d], "identical twins must be [N, d] like the anchors");
    if settings.use_fraternal {
        assert_eq!(f.meta.shape().as_slice(), &[n, d], "fraternal twins must be [N, d] like the anchors");
    }
    if settings.queue_rows > 0 {
        assert_eq!(q.meta.shape().as_slice(), &[settings.queue_rows, d], "queue must be [K, d]");
    }
    (n, d)
}

impl FusedLossOps for CubeBackend {
    fn iftcl_loss(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        qmask: FloatTensor<Self>,
        ratio: FloatTensor<Self>,
        settings: LossSettings,
    ) -> FloatTensor<Self> {
        Self::iftcl_loss_forward(a, p, f, q, qmask, ratio, settings).0
    }

    fn iftcl_loss_forward(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        qmask: FloatTensor<Self>,
        ratio: FloatTensor<Self>,
        settings: LossSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let Embeddings { a, p, f, q, n, d } = embeddings(a, p, f, q, &settings);
        let (qmask, ratio) = (f32_input(qmask, "queue mask"), f32_input(ratio, "ratio"));
        let m = settings.columns(n);
        let params = params(&a, n, d, &settings);

        // Logits, then (in place) the softmax the backward reads.
        let probs = empty_like(&a, Shape::from([n, m]));
        launch(
            LogitsKernel,
            CubeDim::new_1d(MATRIX_THREADS),
            CubeCount::Static(groups(m, MATRIX_THREADS), groups(n, ROWS_PER_THREAD), 1),
            &[&a, &p, &f, &q, &qmask, &probs, &params],
        );
        let stats = empty_like(&a, Shape::from([n, 4]));
        launch(RowsKernel, CubeDim::new_1d(ROW_THREADS), CubeCount::Static(n as u32, 1, 1), &[&probs, &ratio, &stats, &params]);
        let terms = empty_like(&a, Shape::from([2]));
        launch(ReduceKernel, CubeDim::new_1d(ROW_THREADS), CubeCount::Static(1, 1, 1), &[&stats, &terms, &params]);
        (terms, stats, probs)
    }

    fn iftcl_loss_backward(
        probs: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        grad_terms: FloatTensor<Self>,
        settings: LossSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let Embeddings { a, p, f, q, n, d } = embeddings(a, p, f, q, &settings);
        let (probs, stats, grad_terms) = (f32_input(probs, "probs"), f32_input(stats, "stats"), f32_input(grad_terms, "grad"));
        let params = params(&a, n, d, &settings);
        let twin_rows = if settings.use_fraternal { 2 * n } else { n };

        let grad_a = empty_like(&a, Shape::from([n, d]));
        launch(
            GradAnchorKernel,
            CubeDim::new_1d(MATRIX_THREADS),
            CubeCount::Static(groups(d / 4, MATRIX_THREADS), groups(n, ROWS_PER_THREAD), 1),
            &[&probs, &stats, &p, &f, &q, &grad_terms, &params, &grad_a],
        );
        let grad_p = empty_like(&a, Shape::from([n, d]));
        let grad_f = empty_like(&a, f.meta.shape().clone());
        launch(
            GradTwinsKernel,
            CubeDim::new_1d(MATRIX_THREADS),
            CubeCount::Static(groups(d / 4, MATRIX_THREADS), groups(twin_rows, ROWS_PER_THREAD), 1),
            &[&probs, &stats, &a, &grad_terms, &params, &grad_p, &grad_f],
        );
        (grad_a, grad_p, grad_f)
    }
}
