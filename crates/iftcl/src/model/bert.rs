//! A BERT-family transformer encoder (embeddings, post-LayerNorm encoder layers) with real
//! dropout: active when the module is in training mode on an autodiff device, off otherwise.

use burn::module::Module;
use super::dropout::dropout;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate, relu, softmax};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

use super::weights::ParamIo;
use crate::config::{BertConfig, HiddenAct};
use crate::error::Result;

/// Word, position and token-type embeddings, summed, normalised and dropped out.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    dropout: Dropout,
}

/// One encoder layer: self-attention and a feed-forward block, each with a residual and
/// LayerNorm after it (BERT's post-norm order).
#[derive(Module, Debug)]
pub struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: LayerNorm,
    hidden_dropout: Dropout,
    attn_dropout: Dropout,
    heads: usize,
    /// 0 = exact GELU, 1 = tanh GELU, 2 = ReLU (a plain integer so the module derive stores it).
    act: usize,
}

/// The whole encoder: token ids in, one hidden state per token out.
#[derive(Module, Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).init(device)
}

fn norm(c: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(c.hidden_size).with_epsilon(c.layer_norm_eps).init(device)
}

impl BertModel {
    /// A randomly initialised encoder of the shape `config` describes. Parameters are lazy:
    /// loading weights over them never materialises the random values.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        let embeddings = BertEmbeddings {
            word: EmbeddingConfig::new(config.vocab_size, h).init(device),
            position: EmbeddingConfig::new(config.max_position_embeddings, h).init(device),
            token_type: EmbeddingConfig::new(config.type_vocab_size, h).init(device),
            norm: norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        };
        let act = match config.hidden_act {
            HiddenAct::Gelu => 0,
            HiddenAct::GeluTanh => 1,
            HiddenAct::Relu => 2,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| BertLayer {
                query: linear(h, h, device),
                key: linear(h, h, device),
                value: linear(h, h, device),
                attn_out: linear(h, h, device),
                attn_norm: norm(config, device),
                ffn_in: linear(h, config.intermediate_size, device),
                ffn_out: linear(config.intermediate_size, h, device),
                ffn_norm: norm(config, device),
                hidden_dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
                attn_dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
                heads: config.num_attention_heads,
                act,
            })
            .collect();
        BertModel { embeddings, layers }
    }

    /// Walks every parameter with its Hugging Face name: the one place where names are mapped
    /// (see the table in [`super::weights`]).
    pub(crate) fn visit_params(&mut self, config: &BertConfig, io: &mut impl ParamIo) -> Result<()> {
        let h = config.hidden_size;
        let e = &mut self.embeddings;
        io.embedding("embeddings.word_embeddings", &mut e.word, config.vocab_size, h)?;
        io.embedding("embeddings.position_embeddings", &mut e.position, config.max_position_embeddings, h)?;
        io.embedding("embeddings.token_type_embeddings", &mut e.token_type, config.type_vocab_size, h)?;
        io.layer_norm("embeddings.LayerNorm", &mut e.norm, h)?;
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{i}");
            io.linear(&format!("{p}.attention.self.query"), &mut l.query, h, h)?;
            io.linear(&format!("{p}.attention.self.key"), &mut l.key, h, h)?;
            io.linear(&format!("{p}.attention.self.value"), &mut l.value, h, h)?;
            io.linear(&format!("{p}.attention.output.dense"), &mut l.attn_out, h, h)?;
            io.layer_norm(&format!("{p}.attention.output.LayerNorm"), &mut l.attn_norm, h)?;
            io.linear(&format!("{p}.intermediate.dense"), &mut l.ffn_in, h, config.intermediate_size)?;
            io.linear(&format!("{p}.output.dense"), &mut l.ffn_out, config.intermediate_size, h)?;
            io.layer_norm(&format!("{p}.output.LayerNorm"), &mut l.ffn_norm, h)?;
        }
        Ok(())
    }

    /// Token states for a padded batch.
    ///
    /// - `ids`: `[batch, len]` token ids.
    /// - `mask`: `[batch, len]`, 1.0 for real tokens and 0.0 for padding.
    /// - returns `[batch, len, hidden]`; on the CPU the states of padding positions are zeros
    ///   (see [`Rows`]), elsewhere they are computed like any token's. Pooling masks them out
    ///   either way.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let pack = matches!(OpPath::for_device(&ids.device()), OpPath::Host | OpPath::HostAutodiff);
        self.forward_rows(ids, mask, pack)
    }

    /// [`Self::forward`], computing only the real tokens' rows when `pack` (see [`Rows`]).
    pub(crate) fn forward_rows(&self, ids: Tensor<2, Int>, mask: Tensor<2>, pack: bool) -> Tensor<3> {
        let [batch, len] = ids.dims();
        let e = &self.embeddings;
        // Positions are 0..len and every token type is 0 for single sentences: slicing the
        // tables avoids two gathers and gives the same gradients.
        let pos = e.position.weight.val().slice([0..len]).unsqueeze::<3>();
        let typ = e.token_type.weight.val().slice([0..1]).unsqueeze::<3>();
        let x = e.word.forward(ids) + pos + typ;
        let device = x.device();
        let hidden = x.dims()[2];
        let path = OpPath::for_device(&device);
        let rows = Rows::new(&mask, batch, len, pack);
        let x = rows.pack(x.reshape([batch * len, hidden]));
        let mut x = dropout(&e.dropout, e.norm.forward(x), path);
        // Additive attention bias: 0 for tokens, a large negative number for padding.
        let bias = (mask - 1.0).mul_scalar(1e9).reshape([batch, 1, 1, len]);
        for layer in &self.layers {
            x = layer.forward(x, bias.clone(), &rows, path);
        }
        rows.unpack(x).reshape([batch, len, hidden])
    }
}

/// Which rows of the `[batch·len, hidden]` token states the row-wise parts of a layer (dense
/// layers, LayerNorm, GELU, dropout) compute. On the CPU only real tokens: padding is about a
/// fifth of a training step's tokens even after length bucketing, and all of it went through
/// every matrix product. Attention alone needs the padded `[batch, len]` layout, so its query,
/// key and value rows are scattered into zeros before it and its output rows gathered back
/// after it (a copy each, against a quarter of a layer's multiply-adds saved on a SentEval
/// batch). GPUs keep every row, as before (not measured there yet).
struct Rows {
    /// Positions of the real tokens in `[batch·len]`, when some rows are padding and this
    /// device packs.
    real: Option<Tensor<1, Int>>,
    padded: usize,
}

impl Rows {
    fn new(mask: &Tensor<2>, batch: usize, len: usize, pack: bool) -> Self {
        let padded = batch * len;
        let real = pack
            .then(|| mask.to_data().iter::<f32>().enumerate().filter(|(_, m)| *m > 0.5).map(|(i, _)| i as i64).collect::<Vec<_>>())
            .filter(|real| !real.is_empty() && real.len() < padded)
            .map(|real| {
                let n = real.len();
                Tensor::<1, Int>::from_data(TensorData::new(real, [n]), &mask.device())
            });
        Rows { real, padded }
    }

    /// `[batch·len, w]` → the rows this device computes.
    fn pack(&self, x: Tensor<2>) -> Tensor<2> {
        match &self.real {
            Some(real) => x.select(0, real.clone()),
            None => x,
        }
    }

    /// The rows this device computes → `[batch·len, w]`, zeros at padding.
    fn unpack(&self, x: Tensor<2>) -> Tensor<2> {
        match &self.real {
            Some(real) => {
                let w = x.dims()[1];
                Tensor::zeros([self.padded, w], &x.device()).select_assign(0, real.clone(), x, IndexingUpdateOp::Add)
            }
            None => x,
        }
    }
}

/// How the feed-forward GELU (and dropout, see `dropout.rs`) is computed on a device, decided
/// once per forward pass.
/// - `Host`: CPU inference, the vectorised host GELU (see `gelu.rs`).
/// - `HostAutodiff`: CPU training, the same GELU with a host-computed derivative, and dropout
///   masks drawn on the host.
/// - `Burn`: GPU inference, burn's ops.
/// - `Composed`: GPU training, GELU written in tensor ops (`gelu.rs` says why: burn's GELU
///   backward is NaN for large inputs on browser WebGPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpPath {
    Host,
    HostAutodiff,
    Burn,
    Composed,
}

impl OpPath {
    pub fn for_device(device: &Device) -> Self {
        let cpu = device.clone().inner() == Device::flex();
        match (cpu, device.is_autodiff()) {
            (true, false) => Self::Host,
            (true, true) => Self::HostAutodiff,
            (false, true) => Self::Composed,
            (false, false) => Self::Burn,
        }
    }
}

/// The feed-forward activation (`act`: 0 exact GELU, 1 tanh GELU, 2 ReLU) computed the way
/// `path` says (see [`OpPath`]).
pub fn activation_with<const D: usize>(x: Tensor<D>, act: usize, path: OpPath) -> Tensor<D> {
    use OpPath::*;
    match (act, path) {
        (0, Host) => super::gelu::gelu_host(x),
        (0, HostAutodiff) => super::gelu::gelu_host_autodiff(x),
        (0, Composed) => super::gelu::gelu_composed(x),
        (0, _) => gelu(x),
        (1, Composed) => super::gelu::gelu_tanh_composed(x),
        (1, _) => gelu_approximate(x),
        _ => relu(x),
    }
}

/// [`activation_with`] on the path of `x`'s device.
pub fn activation<const D: usize>(x: Tensor<D>, act: usize) -> Tensor<D> {
    let path = OpPath::for_device(&x.device());
    activation_with(x, act, path)
}

impl BertLayer {
    /// `x`: the rows `rows` keeps of `[b·l, h]`; `bias`: `[b, 1, 1, l]`.
    fn forward(&self, x: Tensor<2>, bias: Tensor<4>, rows: &Rows, path: OpPath) -> Tensor<2> {
        let [b, _, _, l] = bias.dims();
        let h = x.dims()[1];
        let dh = h / self.heads;
        // The dense layers see 2-D `[rows, h]`: burn keeps a 3-D input whose length is a
        // multiple of 32 as a batched matmul, which on the CPU backend packs the weight again
        // for every sentence (with it, a CPU training step took about a quarter more CPU time).
        let split = |t: Tensor<2>| rows.unpack(t).reshape([b, l, self.heads, dh]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (dh as f64).sqrt()) + bias;
        let probs = dropout(&self.attn_dropout, softmax(scores, 3), path);
        let ctx = rows.pack(probs.matmul(v).swap_dims(1, 2).reshape([b * l, h]));
        let attn = dropout(&self.hidden_dropout, self.attn_out.forward(ctx), path);
        let x = self.attn_norm.forward(attn + x);
        let inner = self.ffn_in.forward(x.clone());
        let inner = activation_with(inner, self.act, path);
        let out = dropout(&self.hidden_dropout, self.ffn_out.forward(inner), path);
        self.ffn_norm.forward(out + x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolingMode;
    use crate::model::pooling::pool;
    use burn::optim::GradientsParams;

    /// Three sentences of 5, 2 and 4 tokens (padded to 5) for the tiny encoder.
    fn batch(device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
        let lens = [5usize, 2, 4];
        let ids: Vec<i64> = (0..15).map(|i| if i % 5 < lens[i / 5] { (i as i64 * 7 + 3) % 30 } else { 0 }).collect();
        let mask: Vec<f32> = (0..15).map(|i| if i % 5 < lens[i / 5] { 1.0 } else { 0.0 }).collect();
        (
            Tensor::from_data(TensorData::new(ids, [3, 5]), device),
            Tensor::from_data(TensorData::new(mask, [3, 5]), device),
        )
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn packed_rows_give_the_same_token_states_and_zeros_at_padding() {
        let device = Device::flex();
        let model = BertModel::init(&crate::diagnose::tiny_config(), &device);
        let (ids, mask) = batch(&device);
        let packed = vals(model.forward_rows(ids.clone(), mask.clone(), true));
        let full = vals(model.forward_rows(ids.clone(), mask.clone(), false));
        // `forward` packs on the CPU.
        assert_eq!(vals(model.forward(ids, mask.clone())), packed);
        let m = vals(mask);
        let mut real = 0;
        for (i, (p, f)) in packed.iter().zip(&full).enumerate() {
            if m[i / 16] > 0.5 {
                assert!((p - f).abs() < 1e-5, "token state {i}: packed {p}, every row {f}");
                real += 1;
            } else {
                assert_eq!(*p, 0.0, "padding state {i}");
                assert!(f.abs() > 0.0, "the unpacked pass computes padding rows too");
            }
        }
        assert_eq!(real, 11 * 16);
    }

    #[test]
    fn packed_rows_give_the_same_gradients() {
        let device = Device::flex().autodiff();
        let start = BertModel::init(&crate::diagnose::tiny_config(), &Device::flex());
        let grads = |pack: bool| {
            let model = start.clone().train().fork(&device).set_require_grad(true).train();
            let (ids, mask) = batch(&device);
            let pooled = pool(model.forward_rows(ids, mask.clone(), pack), mask, PoolingMode::Mean);
            let weights = Tensor::<2>::from_data(TensorData::new((0..48).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), [3, 16]), &device);
            let grads = GradientsParams::from_grads((pooled * weights).sum().backward(), &model);
            let l = &model.layers[0];
            let mut all = Vec::new();
            for p in [&model.embeddings.word.weight, &l.query.weight, &l.key.weight, &l.value.weight, &l.attn_out.weight, &l.ffn_in.weight, &l.ffn_out.weight] {
                all.push(vals(grads.get::<2>(p.id).expect("a gradient")));
            }
            all.push(vals(grads.get::<1>(model.layers[1].ffn_norm.gamma.id).expect("a gradient")));
            all
        };
        let (packed, full) = (grads(true), grads(false));
        for (k, (p, f)) in packed.iter().zip(&full).enumerate() {
            let scale = f.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "parameter {k}: a zero gradient checks nothing");
            for (a, b) in p.iter().zip(f) {
                assert!((a - b).abs() <= 1e-5 * scale.max(1.0), "parameter {k}: packed {a}, every row {b}");
            }
        }
    }
}
