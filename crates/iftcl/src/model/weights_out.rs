//! Writing `model.safetensors`: the encoder's parameters under their Hugging Face names
//! ([`super::weights`] has the mapping and the reader), in f32 or another [`Precision`].

use std::collections::BTreeMap;

use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Tensor, bf16, f16};
use safetensors::Dtype;

use super::int8::{self, METADATA_KEY, ROWS_V1, SCALE_SUFFIX, VALUES_SUFFIX};
use super::precision::Precision;
use super::weights::{ParamIo, QUANTIZED_EMBEDDING, transpose};
use crate::error::{Error, Result};

/// One parameter waiting to be read back: its name, checkpoint shape, flattened values,
/// `Some((d_in, d_out))` for a linear weight stored transposed here, and whether an int8 file
/// quantizes it.
struct Pending {
    name: String,
    shape: Vec<usize>,
    values: Tensor<1>,
    transposed: Option<(usize, usize)>,
    quantized: bool,
}

/// Collects the encoder's parameters under Hugging Face names, ready to serialise. Nothing is
/// read from the device until [`WeightSink::to_bytes`] (blocking) or
/// [`WeightSink::to_bytes_async`] (for a browser's WebGPU device, which cannot block).
#[derive(Default)]
pub(crate) struct WeightSink {
    pending: Vec<Pending>,
}

impl WeightSink {
    fn push<const D: usize>(&mut self, name: String, shape: Vec<usize>, t: Tensor<D>, transposed: Option<(usize, usize)>, quantized: bool) {
        let n = shape.iter().product::<usize>();
        self.pending.push(Pending { name, shape, values: t.reshape([n]), transposed, quantized });
    }
}

impl ParamIo for WeightSink {
    fn linear(&mut self, name: &str, layer: &mut Linear, d_in: usize, d_out: usize) -> Result<()> {
        self.push(format!("{name}.weight"), vec![d_out, d_in], layer.weight.val(), Some((d_in, d_out)), true);
        if let Some(b) = &layer.bias {
            self.push(format!("{name}.bias"), vec![d_out], b.val(), None, false);
        }
        Ok(())
    }

    fn layer_norm(&mut self, name: &str, layer: &mut LayerNorm, dim: usize) -> Result<()> {
        self.push(format!("{name}.weight"), vec![dim], layer.gamma.val(), None, false);
        if let Some(b) = &layer.beta {
            self.push(format!("{name}.bias"), vec![dim], b.val(), None, false);
        }
        Ok(())
    }

    fn embedding(&mut self, name: &str, layer: &mut Embedding, rows: usize, dim: usize) -> Result<()> {
        self.push(format!("{name}.weight"), vec![rows, dim], layer.weight.val(), None, name == QUANTIZED_EMBEDDING);
        Ok(())
    }
}

/// A tensor read back, in the checkpoint's layout: (name, shape, values, quantized in int8).
type ReadBack = (String, Vec<usize>, Vec<f32>, bool);

fn read_back(p: &Pending, values: Vec<f32>) -> ReadBack {
    let values = match p.transposed {
        Some((d_in, d_out)) => transpose(&values, d_in, d_out),
        None => values,
    };
    (p.name.clone(), p.shape.clone(), values, p.quantized)
}

impl WeightSink {
    /// Reads every tensor (blocking) and serialises them as safetensors bytes in `precision`.
    pub(crate) fn to_bytes(self, precision: Precision) -> Result<Vec<u8>> {
        let mut values = Vec::with_capacity(self.pending.len());
        for p in self.pending {
            crate::host_reads::note();
            let v = p.values.clone().try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("reading {}: {e:?}", p.name)))?;
            values.push(read_back(&p, v));
        }
        serialize(values, precision)
    }

    /// [`Self::to_bytes`] with asynchronous reads.
    pub(crate) async fn to_bytes_async(self, precision: Precision) -> Result<Vec<u8>> {
        let mut values = Vec::with_capacity(self.pending.len());
        for p in self.pending {
            crate::host_reads::note();
            let data = p.values.clone().into_data_async().await.map_err(|e| Error::Execution(format!("reading {}: {e:?}", p.name)))?;
            let v = data.try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("reading {}: {e:?}", p.name)))?;
            values.push(read_back(&p, v));
        }
        serialize(values, precision)
    }
}

/// Half-precision bytes of `values` (`narrow` converts one value), refusing a value the format
/// cannot hold (f16 ends at ±65504) by tensor name.
fn narrow<T: Copy>(name: &str, values: &[f32], what: &str, narrow: impl Fn(f32) -> T, finite: impl Fn(T) -> bool, bytes: impl Fn(T) -> [u8; 2]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2 * values.len());
    for (i, &x) in values.iter().enumerate() {
        let h = narrow(x);
        if !finite(h) && x.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "tensor `{name}` holds {x} at position {i}, beyond what {what} can hold; write it in bf16 or f32 instead"
            )));
        }
        out.extend(bytes(h));
    }
    Ok(out)
}

/// safetensors bytes (little-endian; the library orders tensors by dtype, then name) of the
/// read-back tensors in `precision`.
pub(crate) fn serialize(tensors: Vec<ReadBack>, precision: Precision) -> Result<Vec<u8>> {
    let le = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len() + 64);
    for (name, shape, v, quantized) in tensors {
        match precision {
            Precision::F16 => {
                let bytes = narrow(&name, &v, "float16", f16::from_f32, |h| h.is_finite(), |h| h.to_le_bytes())?;
                raw.push((name, Dtype::F16, shape, bytes));
            }
            Precision::Bf16 => {
                let bytes = narrow(&name, &v, "bfloat16", bf16::from_f32, |h| h.is_finite(), |h| h.to_le_bytes())?;
                raw.push((name, Dtype::BF16, shape, bytes));
            }
            Precision::Int8 if quantized && shape.len() == 2 => {
                let q = int8::quantize_rows(&v, shape[1]);
                raw.push((format!("{name}{VALUES_SUFFIX}"), Dtype::I8, shape.clone(), q.values.iter().map(|&x| x as u8).collect()));
                raw.push((format!("{name}{SCALE_SUFFIX}"), Dtype::F32, vec![shape[0]], le(&q.scales)));
            }
            Precision::F32 | Precision::Int8 => raw.push((name, Dtype::F32, shape, le(&v))),
        }
    }
    let views = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Execution(format!("serialising {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    if precision == Precision::Int8 {
        meta.insert(METADATA_KEY.to_string(), ROWS_V1.to_string());
    }
    let mut bytes = safetensors::serialize(views, Some(meta.clone().into_iter().collect()))
        .map_err(|e| Error::Execution(format!("serialising weights: {e}")))?;
    sort_metadata(&mut bytes, &meta)?;
    Ok(bytes)
}

/// safetensors writes `__metadata__` from a `HashMap`, whose order changes from run to run:
/// its entries are put in key order here (the same bytes, moved), so that a file's bytes depend
/// on its contents only.
fn sort_metadata(bytes: &mut [u8], meta: &BTreeMap<String, String>) -> Result<()> {
    let sorted = serde_json::to_vec(meta).map_err(|e| Error::Execution(format!("serialising the metadata: {e}")))?;
    let n = bytes.get(..8).map_or(0, |b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as usize);
    let key = b"\"__metadata__\":";
    let header = bytes.get_mut(8..8 + n).unwrap_or_default();
    let start = header.windows(key.len()).position(|w| w == key).map(|i| i + key.len());
    match start.and_then(|s| header.get_mut(s..s + sorted.len())) {
        Some(entries) if entries.first() == Some(&b'{') && entries.last() == Some(&b'}') => {
            entries.copy_from_slice(&sorted);
            Ok(())
        }
        _ => Err(Error::Execution("serialising weights: the header's __metadata__ is not where safetensors writes it".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use burn::tensor::Device;

    use super::*;
    use crate::model::weights::WeightSource;

    const PATH: &str = "m/model.safetensors";

    fn f32_file(tensors: Vec<(&str, Vec<usize>, Vec<f32>, bool)>, precision: Precision) -> Vec<u8> {
        serialize(tensors.into_iter().map(|(n, s, v, q)| (n.to_string(), s, v, q)).collect(), precision).unwrap()
    }

    fn source(bytes: &[u8]) -> Result<WeightSource<'_>> {
        WeightSource::from_bytes(bytes, Path::new(PATH), &Device::flex())
    }

    /// A 3 x 4 matrix of values of every magnitude and sign, and a row of zeros.
    fn matrix() -> Vec<f32> {
        vec![0.5, -1.25, 3.0, 1e-3, 0.0, 0.0, 0.0, 0.0, -7.5, 2.0, 0.125, 100.0]
    }

    #[test]
    fn non_finite_weights_are_refused_by_name() {
        let good = ("embeddings.LayerNorm.bias", vec![2], vec![0.5, -1.0], false);
        let bad = ("encoder.layer.3.output.dense.bias", vec![3], vec![0.0, 1.0, f32::INFINITY], false);
        // In a matrix that is transposed on load, the position is the file's.
        let w = ("encoder.layer.3.output.dense.weight", vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0], false);
        let bytes = f32_file(vec![good.clone(), bad, w], Precision::F32);
        let mut s = source(&bytes).unwrap();
        s.take("embeddings.LayerNorm.bias", &[2], false).expect("finite weights load");
        let e = s.take("encoder.layer.3.output.dense.bias", &[3], false).unwrap_err().to_string();
        assert!(e.contains(PATH) && e.contains("encoder.layer.3.output.dense.bias") && e.contains("inf at position 2"), "{e}");
        let e = s.take("encoder.layer.3.output.dense.weight", &[2, 3], true).unwrap_err().to_string();
        assert!(e.contains("NaN at position 4"), "{e}");
    }

    #[test]
    fn every_precision_round_trips_through_the_file() {
        let w = matrix();
        let transposed = transpose(&w, 3, 4);
        for (precision, tolerance) in [(Precision::F32, 0.0), (Precision::F16, 1e-3), (Precision::Bf16, 4e-3), (Precision::Int8, 0.5 / 127.0 * 1.0001)] {
            let bytes = f32_file(vec![("l.weight", vec![3, 4], w.clone(), true), ("l.bias", vec![3], vec![0.1, -0.2, 0.3], false)], precision);
            let mut s = source(&bytes).unwrap();
            let got = s.take("l.weight", &[3, 4], true).unwrap();
            for (k, (a, b)) in got.iter().zip(&transposed).enumerate() {
                // Relative to the row's largest magnitude for int8, to the value for floats.
                let row_max = w[(k % 3) * 4..(k % 3) * 4 + 4].iter().fold(0f32, |m, x| m.max(x.abs()));
                let scale = if precision == Precision::Int8 { row_max } else { b.abs() };
                assert!((a - b).abs() <= tolerance * scale, "{precision}: entry {k}: {a} vs {b}");
            }
            let bias = s.take("l.bias", &[3], false).unwrap();
            let bias_tolerance = if precision == Precision::Int8 { 0.0 } else { tolerance };
            assert!(bias.iter().zip([0.1f32, -0.2, 0.3]).all(|(a, b)| (a - b).abs() <= bias_tolerance * b.abs()), "{precision}: {bias:?}");
        }
        // The same matrix not transposed (an embedding table), from int8.
        let bytes = f32_file(vec![("embeddings.word_embeddings.weight", vec![3, 4], w.clone(), true)], Precision::Int8);
        let got = source(&bytes).unwrap().take("embeddings.word_embeddings.weight", &[3, 4], false).unwrap();
        assert!(got.iter().zip(&w).all(|(a, b)| (a - b).abs() <= 100.0 / 127.0 / 2.0 + 1e-6), "{got:?}");
        assert_eq!(&got[4..8], &[0.0; 4], "a row of zeros stays zeros");
    }

    #[test]
    fn the_same_weights_give_the_same_bytes() {
        // Two metadata keys, which safetensors writes in a HashMap's order.
        let file = || f32_file(vec![("l.weight", vec![3, 4], matrix(), true)], Precision::Int8);
        let first = file();
        assert!((0..8).all(|_| file() == first));
        let text = String::from_utf8_lossy(&first[8..200]).into_owned();
        assert!(text.contains(r#""__metadata__":{"format":"pt","iftcl.quantization":"int8-rows-v1"}"#), "{text}");
    }

    #[test]
    fn float16_refuses_values_beyond_its_range() {
        let tensors = vec![("big.weight".to_string(), vec![2], vec![1.0, 70000.0], false)];
        let e = serialize(tensors.clone(), Precision::F16).unwrap_err().to_string();
        assert!(e.contains("`big.weight`") && e.contains("70000 at position 1") && e.contains("bf16"), "{e}");
        serialize(tensors, Precision::Bf16).expect("bfloat16 has f32's range");
    }
}
