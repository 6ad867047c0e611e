//! [`SentenceEncoder`]: a model folder loaded onto a device, turning sentences into unit vectors.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{BertConfig, PoolingConfig, PoolingMode, SentenceBertConfig, StModule, read_json};
use crate::error::{Error, Result};
use crate::model::weights::{WeightSink, WeightSource};
use crate::model::{BertModel, l2_normalize, pool};
use crate::tokenize::TextTokenizer;

/// Default batch size for inference.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// How the encoder turns token states into a sentence vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    /// Pooling over tokens.
    pub pooling: PoolingMode,
    /// L2 normalisation after pooling (sentence-transformers' `Normalize` module).
    pub normalize: bool,
}

impl Head {
    /// Pooled (and normalised) sentence vectors of a batch: `[batch, hidden]`.
    pub fn apply(&self, hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let pooled = pool(hidden, mask, self.pooling);
        if self.normalize { l2_normalize(pooled) } else { pooled }
    }
}

/// The raw files of a model folder, for loading from bytes (browser, tests) or from disk.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `model.safetensors`.
    pub weights: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `1_Pooling/config.json`, if any (mean pooling otherwise).
    pub pooling: Option<Vec<u8>>,
    /// `max_seq_length` from `sentence_bert_config.json`, if any.
    pub max_seq_length: Option<usize>,
    /// Lower-case inputs before tokenising (`sentence_bert_config.json`'s `do_lower_case`).
    pub lower_case: bool,
    /// Whether `modules.json` lists a `Normalize` module (true when there is no modules.json).
    pub normalize: bool,
    /// Where the files came from (for error messages).
    pub origin: PathBuf,
}

/// A sentence encoder on one device: tokenizer + transformer + pooling + normalisation.
#[derive(Debug, Clone)]
pub struct SentenceEncoder {
    /// The model's `config.json`.
    pub config: BertConfig,
    /// The transformer.
    pub model: BertModel,
    /// The tokenizer (truncating to `max_seq_length`).
    pub tokenizer: TextTokenizer,
    /// Pooling and normalisation.
    pub head: Head,
    device: Device,
    batch_size: usize,
}

fn require(path: PathBuf, what: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: what.into(),
            path,
            hint: "the model folder needs config.json, model.safetensors and tokenizer.json \
                   (Hugging Face layout); scripts/fetch-model.sh fetches the default model"
                .into(),
        })
    }
}

impl ModelFiles {
    /// Reads a model folder in the Hugging Face layout, with or without the sentence-transformers
    /// files on top.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Missing {
                what: "model folder".into(),
                path: dir.to_path_buf(),
                hint: "run scripts/fetch-model.sh to fetch all-MiniLM-L6-v2, or pass --model DIR".into(),
            });
        }
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io("read", p, e));
        let config = read(&require(dir.join("config.json"), "config.json")?)?;
        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() && dir.join("pytorch_model.bin").is_file() {
            return Err(Error::Missing {
                what: "model.safetensors".into(),
                path: weights_path,
                hint: "only pytorch_model.bin is present; convert it with \
                       `python -c \"from sentence_transformers import SentenceTransformer as S; \
                       S('DIR').save('DIR', safe_serialization=True)\"`"
                    .into(),
            });
        }
        let weights = read(&require(weights_path, "model.safetensors")?)?;
        let tokenizer = read(&require(dir.join("tokenizer.json"), "tokenizer.json")?)?;

        // sentence-transformers layout: modules.json names the pooling folder.
        let modules_path = dir.join("modules.json");
        let modules: Option<Vec<StModule>> =
            if modules_path.is_file() { Some(read_json(&modules_path)?) } else { None };
        let pooling_dir = modules
            .as_ref()
            .and_then(|m| m.iter().find(|m| m.kind.ends_with("Pooling")).map(|m| dir.join(&m.path)))
            .unwrap_or_else(|| dir.join("1_Pooling"));
        let pooling_path = pooling_dir.join("config.json");
        let pooling = if pooling_path.is_file() { Some(read(&pooling_path)?) } else { None };
        let normalize = modules.as_ref().is_none_or(|m| m.iter().any(|m| m.kind.ends_with("Normalize")));
        let sbert_path = dir.join("sentence_bert_config.json");
        let (max_seq_length, lower_case) = if sbert_path.is_file() {
            let s: SentenceBertConfig = read_json(&sbert_path)?;
            (Some(s.max_seq_length), s.do_lower_case)
        } else {
            (None, false)
        };
        Ok(ModelFiles {
            config,
            weights,
            tokenizer,
            pooling,
            max_seq_length,
            lower_case,
            normalize,
            origin: dir.to_path_buf(),
        })
    }
}

impl SentenceEncoder {
    /// Loads a model folder onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::from_files(ModelFiles::read_dir(dir)?, device)
    }

    /// Builds the encoder from the raw files of a model folder.
    pub fn from_files(files: ModelFiles, device: &Device) -> Result<Self> {
        let origin = &files.origin;
        let config_path = origin.join("config.json");
        let config: BertConfig = serde_json::from_slice(&files.config).map_err(|e| Error::Parse {
            path: config_path.clone(),
            format: "JSON",
            message: e.to_string(),
        })?;
        config.validate(&config_path)?;

        let pooling_path = origin.join("1_Pooling/config.json");
        let pooling = match &files.pooling {
            Some(bytes) => {
                let p: PoolingConfig = serde_json::from_slice(bytes).map_err(|e| Error::Parse {
                    path: pooling_path.clone(),
                    format: "JSON",
                    message: e.to_string(),
                })?;
                if p.word_embedding_dimension != config.hidden_size {
                    return Err(Error::Config {
                        path: pooling_path,
                        field: "word_embedding_dimension".into(),
                        message: format!("{} but config.json has hidden_size {}", p.word_embedding_dimension, config.hidden_size),
                    });
                }
                p.mode(&pooling_path)?
            }
            None => PoolingMode::Mean,
        };

        let max_len = files.max_seq_length.unwrap_or(config.max_position_embeddings);
        if max_len > config.max_position_embeddings {
            return Err(Error::Config {
                path: origin.join("sentence_bert_config.json"),
                field: "max_seq_length".into(),
                message: format!(
                    "{max_len} exceeds the model's max_position_embeddings {}",
                    config.max_position_embeddings
                ),
            });
        }
        let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, &origin.join("tokenizer.json"), max_len, files.lower_case)?;
        let bound = tokenizer.id_bound();
        if bound > config.vocab_size {
            return Err(Error::TokenizerMismatch(format!(
                "{} produces token ids up to {} but the model's embedding table has {} rows \
                 (config.json vocab_size); the tokenizer belongs to another model",
                origin.join("tokenizer.json").display(),
                bound - 1,
                config.vocab_size
            )));
        }

        let mut model = BertModel::init(&config, device);
        let mut source = WeightSource::from_bytes(&files.weights, &origin.join("model.safetensors"), device)?;
        model.visit_params(&config, &mut source)?;

        Ok(SentenceEncoder {
            config,
            model,
            tokenizer,
            head: Head { pooling, normalize: files.normalize },
            device: device.clone(),
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Assembles an encoder from its parts (the trainer evaluates its model this way).
    pub fn from_parts(config: BertConfig, model: BertModel, tokenizer: TextTokenizer, head: Head, device: &Device) -> Self {
        SentenceEncoder { config, model, tokenizer, head, device: device.clone(), batch_size: DEFAULT_BATCH_SIZE }
    }

    /// The device the encoder runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the sentence vectors.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// Sets the inference batch size (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Token ids of each text (truncated to `max_seq_length`).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode_batch(texts)
    }

    /// Sentence vectors for `texts`, in input order. Inputs are sorted by length and batched so
    /// short sentences are not padded to long ones.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenize(texts)?;
        self.embed_ids(&ids)
    }

    /// Sentence vectors for already-tokenised inputs, in input order.
    ///
    /// On the CPU backend batches run on several threads at once (one per core): the matrix
    /// products are threaded by the backend, but the element-wise work (GELU, softmax, norms)
    /// is not, and whole batches in parallel keep every core busy. A GPU gets one stream.
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let chunks = self.length_sorted_batches(ids);
        let run = |chunk: &[usize], model: &BertModel| -> Result<Vec<f32>> {
            // A CPU-GPU sync point: one read per batch.
            self.batch_embeddings(ids, chunk, model).try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("{e:?}")))
        };
        let workers = if self.parallel_batches() { std::thread::available_parallelism().map_or(1, |n| n.get()).min(chunks.len()) } else { 1 };
        let mut results: Vec<Option<Result<Vec<f32>>>> = (0..chunks.len()).map(|_| None).collect();
        if workers <= 1 {
            for (slot, chunk) in results.iter_mut().zip(&chunks) {
                *slot = Some(run(chunk, &self.model));
            }
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let done = std::sync::Mutex::new(&mut results);
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    let model = self.model.clone();
                    let (next, done, chunks, run) = (&next, &done, &chunks, &run);
                    scope.spawn(move || loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if k >= chunks.len() {
                            break;
                        }
                        let r = run(&chunks[k], &model);
                        done.lock().expect("no worker panics while holding the lock")[k] = Some(r);
                    });
                }
            });
        }
        let values = results.into_iter().map(|r| r.expect("every batch ran")).collect::<Result<Vec<_>>>()?;
        Ok(self.scatter(ids.len(), &chunks, values))
    }

    /// [`Self::embed`] with asynchronous reads: what a browser's WebGPU device needs (it cannot
    /// block on a read). Batches run one after the other.
    pub async fn embed_async(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenize(texts)?;
        let chunks = self.length_sorted_batches(&ids);
        let mut values = Vec::with_capacity(chunks.len());
        for chunk in &chunks {
            let data = self.batch_embeddings(&ids, chunk, &self.model).into_data_async().await.map_err(|e| Error::Execution(format!("{e:?}")))?;
            values.push(data.try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("{e:?}")))?);
        }
        Ok(self.scatter(ids.len(), &chunks, values))
    }

    /// Input positions sorted by length (longest first), in batches.
    fn length_sorted_batches(&self, ids: &[Vec<u32>]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        order.chunks(self.batch_size).map(<[usize]>::to_vec).collect()
    }

    /// The embeddings `[batch, dim]` of the inputs at `chunk`.
    fn batch_embeddings(&self, ids: &[Vec<u32>], chunk: &[usize], model: &BertModel) -> Tensor<2> {
        let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
        encode(model, &self.head, &batch, &self.device)
    }

    /// Puts each batch's rows back at their inputs' positions.
    fn scatter(&self, n: usize, chunks: &[Vec<usize>], values: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
        let dim = self.dim();
        let mut out = vec![Vec::new(); n];
        for (chunk, values) in chunks.iter().zip(values) {
            for (row, &i) in chunk.iter().enumerate() {
                out[i] = values[row * dim..(row + 1) * dim].to_vec();
            }
        }
        out
    }

    /// The weights as `model.safetensors` bytes (Hugging Face names, f32).
    pub fn safetensors_bytes(&self) -> Result<Vec<u8>> {
        weights_bytes(&self.model, &self.config)
    }

    /// [`Self::safetensors_bytes`] with asynchronous reads.
    pub async fn safetensors_bytes_async(&self) -> Result<Vec<u8>> {
        weights_bytes_async(&self.model, &self.config).await
    }

    /// Whether batches run on several threads (CPU backend, not autodiff).
    fn parallel_batches(&self) -> bool {
        self.device == Device::flex() && !self.device.is_autodiff()
    }

    /// Writes the model folder in the Hugging Face + sentence-transformers layout
    /// (config.json, model.safetensors, tokenizer.json, modules.json, 1_Pooling/config.json,
    /// sentence_bert_config.json, config_sentence_transformers.json).
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_model(&self.model, &self.config, self.head, self.tokenizer.max_len(), self.tokenizer.json_bytes(), dir)
    }
}

/// Pads a batch of token-id lists: `([batch, len] ids, [batch, len] mask)`.
pub fn pad_batch(batch: &[&[u32]], pad_id: u32, device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
    let len = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(batch.len() * len);
    let mut mask = Vec::with_capacity(batch.len() * len);
    for seq in batch {
        ids.extend(seq.iter().map(|&t| t as i64));
        ids.extend(std::iter::repeat_n(pad_id as i64, len - seq.len()));
        mask.extend(std::iter::repeat_n(1.0f32, seq.len()));
        mask.extend(std::iter::repeat_n(0.0f32, len - seq.len()));
    }
    let shape = [batch.len(), len];
    (
        Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device),
        Tensor::<2>::from_data(TensorData::new(mask, shape), device),
    )
}

/// Sentence vectors `[batch, hidden]` of a tokenised batch through `model`: the forward pass the
/// CLI, the evaluator and the trainer share (dropout acts when `model` is training on an
/// autodiff device).
pub fn encode(model: &BertModel, head: &Head, batch: &[&[u32]], device: &Device) -> Tensor<2> {
    let (ids, mask) = pad_batch(batch, 0, device);
    let hidden = model.forward(ids, mask.clone());
    head.apply(hidden, mask)
}

/// Rows per group below which [`encode_bucketed`] does not split further: small matrix
/// products cost more per row than the padding they save.
const MIN_BUCKET_ROWS: usize = 8;

/// [`encode`] with the rows sorted by length and split into up to `buckets` groups, each padded
/// only to its own longest row, then put back in input order. The vectors are the same
/// (padding is masked out of attention and pooling; dropout is drawn per row either way) for
/// fewer padded tokens: a training batch of SentEval sentences padded as one block (32 tokens)
/// is about 45% padding, and 4 groups cut the tokens processed by about a third.
pub fn encode_bucketed(model: &BertModel, head: &Head, batch: &[&[u32]], device: &Device, buckets: usize) -> Tensor<2> {
    let n = batch.len();
    let buckets = buckets.min(n / MIN_BUCKET_ROWS).max(1);
    let (shortest, longest) = batch.iter().fold((usize::MAX, 0), |(lo, hi), b| (lo.min(b.len()), hi.max(b.len())));
    if buckets == 1 || shortest == longest {
        return encode(model, head, batch, device);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| batch[i].len());
    let parts: Vec<Tensor<2>> = order
        .chunks(n.div_ceil(buckets))
        .map(|group| {
            let rows: Vec<&[u32]> = group.iter().map(|&i| batch[i]).collect();
            encode(model, head, &rows, device)
        })
        .collect();
    let sorted = Tensor::cat(parts, 0);
    // Where each input row sits in `sorted`.
    let mut position = vec![0i64; n];
    for (at, &i) in order.iter().enumerate() {
        position[i] = at as i64;
    }
    sorted.select(0, Tensor::<1, Int>::from_data(TensorData::new(position, [n]), device))
}

/// Writes `model` as a model folder, atomically: into `<dir>.partial` first, then renamed over
/// `dir`, so a crash never leaves a half-written checkpoint under the final name.
pub fn save_model(
    model: &BertModel,
    config: &BertConfig,
    head: Head,
    max_seq_length: usize,
    tokenizer_json: &[u8],
    dir: &Path,
) -> Result<()> {
    let tmp = fresh_partial(dir)?;
    write_model_files(model, config, head, max_seq_length, tokenizer_json, &tmp)?;
    replace_dir(&tmp, dir)
}

/// `model.safetensors` bytes of `model`: Hugging Face tensor names, f32.
pub fn weights_bytes(model: &BertModel, config: &BertConfig) -> Result<Vec<u8>> {
    collect_weights(model, config)?.to_bytes()
}

/// [`weights_bytes`] with asynchronous reads (a browser's WebGPU device cannot block).
pub async fn weights_bytes_async(model: &BertModel, config: &BertConfig) -> Result<Vec<u8>> {
    collect_weights(model, config)?.to_bytes_async().await
}

fn collect_weights(model: &BertModel, config: &BertConfig) -> Result<WeightSink> {
    let mut sink = WeightSink::default();
    let mut m = model.clone();
    m.visit_params(config, &mut sink)?;
    Ok(sink)
}

/// Creates an empty `<dir>.partial` (removing a leftover one) and returns its path.
pub fn fresh_partial(dir: &Path) -> Result<PathBuf> {
    let tmp = partial_path(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    Ok(tmp)
}

/// Writes the files of the Hugging Face + sentence-transformers layout into `dir` (no
/// atomicity: callers stage into a `.partial` folder).
pub fn write_model_files(
    model: &BertModel,
    config: &BertConfig,
    head: Head,
    max_seq_length: usize,
    tokenizer_json: &[u8],
    dir: &Path,
) -> Result<()> {
    use crate::config::write_json;
    std::fs::create_dir_all(dir.join("1_Pooling")).map_err(|e| Error::io("create", dir, e))?;
    let bytes = weights_bytes(model, config)?;
    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, data).map_err(|e| Error::io("write", &p, e))
    };
    write("model.safetensors", &bytes)?;
    write("tokenizer.json", tokenizer_json)?;
    write_json(&dir.join("config.json"), config)?;
    write_json(&dir.join("1_Pooling/config.json"), &PoolingConfig::for_mode(head.pooling, config.hidden_size))?;
    write_json(
        &dir.join("sentence_bert_config.json"),
        &SentenceBertConfig { max_seq_length, do_lower_case: false },
    )?;
    let mut modules = vec![
        StModule { idx: 0, name: "0".into(), path: "".into(), kind: "sentence_transformers.models.Transformer".into() },
        StModule { idx: 1, name: "1".into(), path: "1_Pooling".into(), kind: "sentence_transformers.models.Pooling".into() },
    ];
    if head.normalize {
        modules.push(StModule {
            idx: 2,
            name: "2".into(),
            path: "2_Normalize".into(),
            kind: "sentence_transformers.models.Normalize".into(),
        });
        std::fs::create_dir_all(dir.join("2_Normalize")).map_err(|e| Error::io("create", dir, e))?;
    }
    write_json(&dir.join("modules.json"), &modules)?;
    write_json(
        &dir.join("config_sentence_transformers.json"),
        &serde_json::json!({
            "__version__": {"sentence_transformers": "3.0.0", "iftcl": env!("CARGO_PKG_VERSION")},
            "prompts": {},
            "default_prompt_name": null,
            "similarity_fn_name": "cosine"
        }),
    )?;
    Ok(())
}

/// `<dir>.partial`, the staging folder of an atomic folder write.
pub fn partial_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    dir.with_file_name(name)
}

/// Moves the finished `tmp` folder to `dir`, replacing an older `dir`: the old one is renamed
/// aside first, so at every instant one complete folder exists under one of the two names.
pub fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let mut old_name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    old_name.push(".old");
    let old = dir.with_file_name(old_name);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io("rename", dir, e))?;
    }
    std::fs::rename(tmp, dir).map_err(|e| Error::io("rename", tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    Ok(())
}
