//! The backend extension behind the fused loss: one differentiable op, `iftcl_loss`, whose
//! forward and backward run the WGSL kernels of `shaders/` on the CubeCL (wgpu) backend.
//!
//! - [`FusedLossOps`] is declared with burn's `#[backend_extension]` for the `Cube` backend,
//!   its lazy `Fusion` wrapper (generated) and `Autodiff` (written here: the backward is our
//!   own kernels, not a composition of burn ops).
//! - `iftcl_loss_forward` returns (terms `[2]`, row stats `[N, 4]`, softmax `[N, M]`);
//!   `iftcl_loss_backward` turns the incoming gradient of terms into the gradients of the
//!   anchors, identical twins and fraternal twins.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, backend_extension};
use burn::tensor::Shape;

/// The loss settings the kernels read (from a small parameter buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSettings {
    /// Temperature τ.
    pub tau: f32,
    /// Margin scale β.
    pub beta: f32,
    /// Two-sided Twins form (else pull).
    pub two_sided: bool,
    /// Whether fraternal twins take part (negatives and the Twins term).
    pub use_fraternal: bool,
    /// Queue rows that take part (the rows of the queue tensor, or 0 for none: the queue
    /// tensor is then a 1-row placeholder).
    pub queue_rows: usize,
}

impl LossSettings {
    /// Columns of the logits matrix for `n` anchors: N identical + N fraternal (when used) + K.
    pub fn columns(&self, n: usize) -> usize {
        n + if self.use_fraternal { n } else { 0 } + self.queue_rows
    }
}

fn forward_meta(
    a: &TensorSpec,
    _p: &TensorSpec,
    _f: &TensorSpec,
    _q: &TensorSpec,
    _qmask: &TensorSpec,
    _ratio: &TensorSpec,
    settings: &LossSettings,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let n = a.shape[0];
    (
        TensorSpec::new(Shape::from([2]), a.dtype),
        TensorSpec::new(Shape::from([n, 4]), a.dtype),
        TensorSpec::new(Shape::from([n, settings.columns(n)]), a.dtype),
    )
}

fn loss_meta(
    a: &TensorSpec,
    _p: &TensorSpec,
    _f: &TensorSpec,
    _q: &TensorSpec,
    _qmask: &TensorSpec,
    _ratio: &TensorSpec,
    _settings: &LossSettings,
) -> TensorSpec {
    TensorSpec::new(Shape::from([2]), a.dtype)
}

#[allow(clippy::too_many_arguments)]
fn backward_meta(
    _probs: &TensorSpec,
    _stats: &TensorSpec,
    a: &TensorSpec,
    p: &TensorSpec,
    f: &TensorSpec,
    _q: &TensorSpec,
    _grad_terms: &TensorSpec,
    _settings: &LossSettings,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    (a.clone(), p.clone(), f.clone())
}

/// The fused IFTCL loss as backend operations.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait FusedLossOps: Backend {
    /// The loss terms `[2]` = (L_nce, L_twins): differentiable in `a`, `p`, `f`.
    #[fusion(meta = loss_meta)]
    fn iftcl_loss(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        qmask: FloatTensor<Self>,
        ratio: FloatTensor<Self>,
        settings: LossSettings,
    ) -> FloatTensor<Self>;

    /// Forward kernels: (terms `[2]`, stats `[N, 4]`, softmax P `[N, M]`).
    #[fusion(meta = forward_meta)]
    fn iftcl_loss_forward(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        qmask: FloatTensor<Self>,
        ratio: FloatTensor<Self>,
        settings: LossSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Backward kernels: (dL/da, dL/dp, dL/df) for the incoming gradient of the terms.
    #[allow(clippy::too_many_arguments)]
    #[fusion(meta = backward_meta)]
    fn iftcl_loss_backward(
        probs: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        grad_terms: FloatTensor<Self>,
        settings: LossSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// What the backward keeps from the forward.
#[derive(Debug, Clone)]
struct SavedForward<B: Backend> {
    probs: FloatTensor<B>,
    stats: FloatTensor<B>,
    a: FloatTensor<B>,
    p: FloatTensor<B>,
    f: FloatTensor<B>,
    q: FloatTensor<B>,
    settings: LossSettings,
}

#[derive(Debug)]
struct FusedLossBackward;

impl<B: Backend + FusedLossOps> Backward<B, 3> for FusedLossBackward {
    type State = SavedForward<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_a, node_p, node_f] = ops.parents;
        let grad_terms = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let (ga, gp, gf) = B::iftcl_loss_backward(s.probs, s.stats, s.a, s.p, s.f, s.q, grad_terms, s.settings);
        if let Some(node) = node_a {
            grads.register::<B>(node.id, ga);
        }
        if let Some(node) = node_p {
            grads.register::<B>(node.id, gp);
        }
        if let Some(node) = node_f {
            grads.register::<B>(node.id, gf);
        }
    }
}

impl<B: Backend + FusedLossOps, C: CheckpointStrategy> FusedLossOps for Autodiff<B, C> {
    fn iftcl_loss(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        f: FloatTensor<Self>,
        q: FloatTensor<Self>,
        qmask: FloatTensor<Self>,
        ratio: FloatTensor<Self>,
        settings: LossSettings,
    ) -> FloatTensor<Self> {
        let (a, node_a) = a.into_parts();
        let (p, node_p) = p.into_parts();
        let (f, node_f) = f.into_parts();
        let (q, qmask, ratio) = (q.into_primitive(), qmask.into_primitive(), ratio.into_primitive());
        // The queue, its mask and the edit ratios are constants: no gradient flows to them.
        match FusedLossBackward.prepare::<C>([node_a, node_p, node_f]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (terms, stats, probs) =
                    B::iftcl_loss_forward(a.clone(), p.clone(), f.clone(), q.clone(), qmask, ratio, settings);
                prep.finish(SavedForward { probs, stats, a, p, f, q, settings }, terms)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::iftcl_loss(a, p, f, q, qmask, ratio, settings)),
        }
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
        // The raw kernels, outside the graph (for benchmarks and tests of the kernels alone).
        let (terms, stats, probs) = B::iftcl_loss_forward(
            a.into_primitive(),
            p.into_primitive(),
            f.into_primitive(),
            q.into_primitive(),
            qmask.into_primitive(),
            ratio.into_primitive(),
            settings,
        );
        (Self::from_inner(terms), Self::from_inner(stats), Self::from_inner(probs))
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
        let (ga, gp, gf) = B::iftcl_loss_backward(
            probs.into_primitive(),
            stats.into_primitive(),
            a.into_primitive(),
            p.into_primitive(),
            f.into_primitive(),
            q.into_primitive(),
            grad_terms.into_primitive(),
            settings,
        );
        (Self::from_inner(ga), Self::from_inner(gp), Self::from_inner(gf))
    }
}
