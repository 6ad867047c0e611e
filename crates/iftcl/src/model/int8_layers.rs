//! [`Int8Layers`]: an encoder's dense layers in int8 for CPU inference (`iftcl embed --dtype
//! int8`, or any int8 model file on the CPU backend).
//!
//! Each layer's query, key and value projections become one matrix (one quantization of the
//! input, one product), its attention output and both feed-forward matrices one each; each
//! quantized per output channel from the loaded weights ([`super::int8::quantize_rows`], which
//! gives back exactly the values of an int8 file: its dequantised rows quantize to themselves).
//! Embeddings, LayerNorms, attention, GELU and pooling stay f32.

use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use super::int8::{QuantizedRows, quantize_rows};
use super::int8_matmul::Int8Matrix;

/// The int8 dense layers of one encoder, built from its weights.
#[derive(Debug)]
pub struct Int8Layers {
    pub(crate) layers: Vec<Int8Layer>,
}

/// One encoder layer's dense layers.
#[derive(Debug)]
pub(crate) struct Int8Layer {
    /// Query, key and value stacked: `3·hidden` outputs.
    pub(crate) qkv: Int8Matrix,
    pub(crate) attn_out: Int8Matrix,
    pub(crate) ffn_in: Int8Matrix,
    pub(crate) ffn_out: Int8Matrix,
}

impl Int8Layers {
    /// Quantizes each layer's dense layers (query, key, value, attention output, feed-forward
    /// in and out; weights on the CPU backend): `BertModel::int8_layers`.
    pub fn from_dense<'a>(layers: impl Iterator<Item = [&'a Linear; 6]>) -> Self {
        let layers = layers
            .map(|[q, k, v, o, i, f]| {
                let inputs = q.weight.dims()[0];
                let one = |layer| {
                    let (rows, inputs, bias) = quantized(layer);
                    Int8Matrix::new(&rows, inputs, bias)
                };
                let qkv = [q, k, v].map(|layer| {
                    let (rows, _, bias) = quantized(layer);
                    (rows, bias)
                });
                Int8Layer { qkv: Int8Matrix::stacked(&qkv, inputs), attn_out: one(o), ffn_in: one(i), ffn_out: one(f) }
            })
            .collect();
        Int8Layers { layers }
    }
}

/// `layer`'s weight (burn keeps it `[inputs, outputs]`) in int8, `[outputs, inputs]`, its
/// inputs and its bias (empty for none).
fn quantized(layer: &Linear) -> (QuantizedRows, usize, Vec<f32>) {
    let [inputs, outputs] = layer.weight.dims();
    let w = host(layer.weight.val());
    let mut rows = vec![0f32; w.len()];
    for (i, row) in w.chunks_exact(outputs).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            rows[o * inputs + i] = v;
        }
    }
    (quantize_rows(&rows, inputs), inputs, layer.bias.as_ref().map_or(Vec::new(), |b| host(b.val())))
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().expect("reading a CPU tensor cannot fail")
}

/// `x·Wᵀ + b` for the rows of `x` (`[rows, inputs]`, on the CPU backend).
pub(crate) fn apply(m: &Int8Matrix, x: Tensor<2>) -> Tensor<2> {
    let (rows, device) = (x.dims()[0], x.device());
    Tensor::from_data(TensorData::new(m.apply(&host(x)), [rows, m.outputs()]), &device)
}
