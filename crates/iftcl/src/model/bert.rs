//! The transformer encoder of every family this tool runs (BERT, RoBERTa, XLM-RoBERTa, MPNet:
//! see [`Family`]): embeddings, post-LayerNorm encoder layers, and for MPNet a relative position
//! bias. Dropout is real: active when the module is in training mode on an autodiff device, off
//! otherwise.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};
use burn::tensor::activation::softmax;
use burn::tensor::Device;

use super::activation::activation_with;
use super::batch::PaddedBatch;
use super::dropout::dropout;
use super::int8_layers::{self, Int8Layer, Int8Layers};
use super::layer_norm::layer_norm;
use super::op_path::OpPath;
use super::relative_position::position_bias;
use super::rows::Rows;
use super::weights::ParamIo;
use crate::error::Result;
use crate::hf_config::{BertConfig, Family, HiddenAct};

/// Word, position and token-type embeddings, summed, normalised and dropped out.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    /// None for MPNet, which has no token types.
    token_type: Option<Embedding>,
    norm: LayerNorm,
    dropout: Dropout,
    /// Row of the position table of the first token (0, or RoBERTa's padding id + 1).
    position_offset: usize,
    /// ε of the LayerNorm (burn's LayerNorm keeps its own private).
    #[module(skip)]
    norm_eps: f64,
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
    /// The feed-forward activation.
    #[module(skip)]
    act: HiddenAct,
    /// ε of both LayerNorms.
    #[module(skip)]
    norm_eps: f64,
}

/// The whole encoder: token ids in, one hidden state per token out.
#[derive(Module, Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    /// MPNet's relative position bias table `[buckets, heads]`, shared by every layer.
    relative_bias: Option<Embedding>,
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
        let mpnet = config.family() == Family::MpNet;
        let embeddings = BertEmbeddings {
            word: EmbeddingConfig::new(config.vocab_size, h).init(device),
            position: EmbeddingConfig::new(config.max_position_embeddings, h).init(device),
            token_type: (!mpnet).then(|| EmbeddingConfig::new(config.type_vocab_size, h).init(device)),
            norm: norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            position_offset: config.position_offset(),
            norm_eps: config.layer_norm_eps,
        };
        let act = config.hidden_act;
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
                norm_eps: config.layer_norm_eps,
            })
            .collect();
        let relative_bias = mpnet.then(|| EmbeddingConfig::new(config.relative_attention_num_buckets, config.num_attention_heads).init(device));
        BertModel { embeddings, layers, relative_bias }
    }

    /// Walks every parameter with its Hugging Face name: the one place where names are mapped
    /// (see the table in [`super::weights`]).
    pub(crate) fn visit_params(&mut self, config: &BertConfig, io: &mut impl ParamIo) -> Result<()> {
        let h = config.hidden_size;
        let e = &mut self.embeddings;
        io.embedding("embeddings.word_embeddings", &mut e.word, config.vocab_size, h)?;
        io.embedding("embeddings.position_embeddings", &mut e.position, config.max_position_embeddings, h)?;
        if let Some(token_type) = &mut e.token_type {
            io.embedding("embeddings.token_type_embeddings", token_type, config.type_vocab_size, h)?;
        }
        io.layer_norm("embeddings.LayerNorm", &mut e.norm, h)?;
        // MPNet names the attention's parts `attn.{q,k,v,o}` and its LayerNorm `attention.LayerNorm`.
        let [query, key, value, attn_out, attn_norm] = match config.family() {
            Family::Bert | Family::Roberta => ["self.query", "self.key", "self.value", "output.dense", "output.LayerNorm"],
            Family::MpNet => ["attn.q", "attn.k", "attn.v", "attn.o", "LayerNorm"],
        };
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{i}");
            io.linear(&format!("{p}.attention.{query}"), &mut l.query, h, h)?;
            io.linear(&format!("{p}.attention.{key}"), &mut l.key, h, h)?;
            io.linear(&format!("{p}.attention.{value}"), &mut l.value, h, h)?;
            io.linear(&format!("{p}.attention.{attn_out}"), &mut l.attn_out, h, h)?;
            io.layer_norm(&format!("{p}.attention.{attn_norm}"), &mut l.attn_norm, h)?;
            io.linear(&format!("{p}.intermediate.dense"), &mut l.ffn_in, h, config.intermediate_size)?;
            io.linear(&format!("{p}.output.dense"), &mut l.ffn_out, config.intermediate_size, h)?;
            io.layer_norm(&format!("{p}.output.LayerNorm"), &mut l.ffn_norm, h)?;
        }
        if let Some(table) = &mut self.relative_bias {
            io.embedding("encoder.relative_attention_bias", table, config.relative_attention_num_buckets, config.num_attention_heads)?;
        }
        Ok(())
    }

    /// Token states for a padded batch: `[batch, len, hidden]`. On the CPU the states of
    /// padding positions are zeros (packed rows, see the `rows` module), elsewhere they are
    /// computed like any token's. Pooling masks them out either way.
    pub fn forward(&self, batch: &PaddedBatch) -> Tensor<3> {
        self.forward_int8(batch, None)
    }

    /// [`Self::forward`] with the dense layers of `int8` (built from this model's weights) on
    /// the CPU backend's inference path; elsewhere `int8` is not used.
    pub fn forward_int8(&self, batch: &PaddedBatch, int8: Option<&Int8Layers>) -> Tensor<3> {
        let path = OpPath::for_device(&batch.ids.device());
        self.forward_rows(batch, path.packs(), int8.filter(|_| path == OpPath::Host))
    }

    /// The dense layers of every layer in int8, quantized from the current weights (on the
    /// CPU backend): what [`Self::forward_int8`] takes.
    pub fn int8_layers(&self) -> Int8Layers {
        Int8Layers::from_dense(self.layers.iter().map(|l| [&l.query, &l.key, &l.value, &l.attn_out, &l.ffn_in, &l.ffn_out]))
    }

    /// [`Self::forward`], computing only the real tokens' rows when `pack`, with the int8
    /// dense layers of `int8` when given.
    pub(crate) fn forward_rows(&self, batch: &PaddedBatch, pack: bool, int8: Option<&Int8Layers>) -> Tensor<3> {
        let [n, len] = batch.dims();
        let e = &self.embeddings;
        // Positions are offset..offset + len and every token type is 0 for single sentences:
        // slicing the tables avoids two gathers and gives the same gradients. (RoBERTa gives
        // padding the padding id's position; padding is masked out, so it does not matter.)
        let off = e.position_offset;
        let pos = e.position.weight.val().slice([off..off + len]).unsqueeze::<3>();
        let mut x = e.word.forward(batch.ids.clone()) + pos;
        if let Some(token_type) = &e.token_type {
            x = x + token_type.weight.val().slice([0..1]).unsqueeze::<3>();
        }
        let device = x.device();
        let hidden = x.dims()[2];
        let path = OpPath::for_device(&device);
        let rows = Rows::new(&batch.lengths, len, pack, &device);
        let x = rows.pack(x.reshape([n * len, hidden]));
        let mut x = dropout(&e.dropout, layer_norm(&e.norm, e.norm_eps, x, path), path);
        // Additive attention bias: 0 for tokens, a large negative number for padding; for MPNet
        // plus the relative position bias of each head.
        let mut bias = (batch.mask.clone() - 1.0).mul_scalar(1e9).reshape([n, 1, 1, len]);
        if let Some(table) = &self.relative_bias {
            bias = bias + position_bias(table, len, &device);
        }
        // GPU inference without a relative position bias: burn's fused attention op, whose
        // padding mask is boolean (true: masked) over [batch, heads, len, len].
        let padding = (path == OpPath::Burn && self.relative_bias.is_none()).then(|| {
            let heads = self.layers.first().map_or(1, |l| l.heads);
            batch.mask.clone().equal_elem(0.0).reshape([n, 1, 1, len]).expand([n, heads, len, len])
        });
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, bias.clone(), padding.as_ref(), &rows, path, int8.map(|q| &q.layers[i]));
        }
        rows.unpack(x).reshape([n, len, hidden])
    }
}

impl BertLayer {
    /// `x`: the rows `rows` keeps of `[b·l, h]`; `bias`: `[b, 1, 1, l]`, or `[b, heads, l, l]`
    /// with a relative position bias.
    /// `int8`: this layer's dense layers in int8 (CPU inference only).
    fn forward(&self, x: Tensor<2>, bias: Tensor<4>, padding: Option<&Tensor<4, Bool>>, rows: &Rows, path: OpPath, int8: Option<&Int8Layer>) -> Tensor<2> {
        let [b, _, _, l] = bias.dims();
        let h = x.dims()[1];
        let dh = h / self.heads;
        // The dense layers see 2-D `[rows, h]`: burn keeps a 3-D input whose length is a
        // multiple of 32 as a batched matmul, which on the CPU backend packs the weight again
        // for every sentence (with it, a CPU training step took about a quarter more CPU time).
        let split = |t: Tensor<2>| rows.unpack(t).reshape([b, l, self.heads, dh]).swap_dims(1, 2);
        let (q, k, v) = match int8 {
            Some(q8) => {
                let qkv = int8_layers::apply(&q8.qkv, x.clone());
                let r = qkv.dims()[0];
                (split(qkv.clone().slice([0..r, 0..h])), split(qkv.clone().slice([0..r, h..2 * h])), split(qkv.slice([0..r, 2 * h..3 * h])))
            }
            None => (split(self.query.forward(x.clone())), split(self.key.forward(x.clone())), split(self.value.forward(x.clone()))),
        };
        let dense = |layer: &Linear, q8: Option<&super::int8_matmul::Int8Matrix>, x: Tensor<2>| match q8 {
            Some(m) => int8_layers::apply(m, x),
            None => layer.forward(x),
        };
        let heads_out = match padding {
            // softmax(QKᵀ/√dh, padding masked)·V in one op: on the wgpu backend autotune picks a
            // flash-attention kernel where one runs, else the same separate ops as below.
            Some(mask) => attention(q, k, v, Some(mask.clone()), None, AttentionModuleOptions::default()),
            None => {
                let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (dh as f64).sqrt()) + bias;
                dropout(&self.attn_dropout, softmax(scores, 3), path).matmul(v)
            }
        };
        let ctx = rows.pack(heads_out.swap_dims(1, 2).reshape([b * l, h]));
        let attn = dropout(&self.hidden_dropout, dense(&self.attn_out, int8.map(|q| &q.attn_out), ctx), path);
        let x = layer_norm(&self.attn_norm, self.norm_eps, attn + x, path);
        let inner = dense(&self.ffn_in, int8.map(|q| &q.ffn_in), x.clone());
        let inner = activation_with(inner, self.act, path);
        let out = dropout(&self.hidden_dropout, dense(&self.ffn_out, int8.map(|q| &q.ffn_out), inner), path);
        layer_norm(&self.ffn_norm, self.norm_eps, out + x, path)
    }
}

/// A 2-layer encoder of width 16 (2 heads, feed-forward 32, vocabulary 30), no dropout.
pub(crate) fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "max_position_embeddings": 16, "layer_norm_eps": 1e-12
    }))
    .expect("a valid config")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hf_config::PoolingMode;
    use crate::model::batch::pad_batch;
    use crate::model::pooling::pool;
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;

    /// Three sentences of 5, 2 and 4 tokens (padded to 5) for the tiny encoder.
    fn batch(device: &Device) -> PaddedBatch {
        let rows: Vec<Vec<u32>> = [5u32, 2, 4].iter().enumerate().map(|(r, &n)| (0..n).map(|t| ((r as u32 * 5 + t) * 7 + 3) % 30).collect()).collect();
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        pad_batch(&refs, 0, device)
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn packed_rows_give_the_same_token_states_and_zeros_at_padding() {
        let device = Device::flex();
        let model = BertModel::init(&tiny_config(), &device);
        let b = batch(&device);
        let packed = vals(model.forward_rows(&b, true, None));
        let full = vals(model.forward_rows(&b, false, None));
        // `forward` packs on the CPU.
        assert_eq!(vals(model.forward(&b)), packed);
        let m = vals(b.mask);
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
        let start = BertModel::init(&tiny_config(), &Device::flex());
        let grads = |pack: bool| {
            let model = start.clone().train().fork(&device).set_require_grad(true).train();
            let b = batch(&device);
            let pooled = pool(model.forward_rows(&b, pack, None), b.mask.clone(), PoolingMode::Mean);
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
