//! [`SentenceEncoder`]: a model folder loaded onto a device, turning sentences into unit vectors.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::hf_config::{BertConfig, PoolingConfig, PoolingMode, parse_json};
use crate::model::folder::{FolderContents, FolderExtras, ModelFiles, weights_bytes, weights_bytes_async};
use crate::model::precision::Precision;
use crate::model::st_modules::{HeadModule, ModuleSpec};
use crate::model::weights::{DenseWeights, WeightSource};
use crate::model::weights_stream::IncomingWeights;
use crate::model::{BertModel, Head, Int8Layers, OpPath, encode_int8};
use crate::tokenize::TextTokenizer;

/// Default batch size for inference.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// Fails when `tokenizer` (read from `origin`) produces ids beyond the embedding table of
/// `config`.
pub(crate) fn check_vocab(tokenizer: &TextTokenizer, config: &BertConfig, origin: &Path) -> Result<()> {
    let bound = tokenizer.id_bound();
    if bound > config.vocab_size {
        return Err(Error::TokenizerMismatch(format!(
            "{} produces token ids up to {} but the model's embedding table has {} rows \
             (config.json vocab_size); the tokenizer belongs to another model",
            origin.display(),
            bound - 1,
            config.vocab_size
        )));
    }
    Ok(())
}

/// A model folder's files read, checked and parsed (config, pooling, tokenizer), waiting for
/// its weights: a caller whose `model.safetensors` is still downloading prepares the rest
/// meanwhile ([`SentenceEncoder::from_files`] is `new` then `load`).
#[derive(Debug, Clone)]
pub struct PreparedEncoder {
    config: BertConfig,
    tokenizer: TextTokenizer,
    pooling: PoolingMode,
    /// The modules after pooling (their weights go onto the device in `load`).
    modules: Vec<ModuleSpec>,
    normalize: bool,
    extras: FolderExtras,
    origin: std::path::PathBuf,
}

impl PreparedEncoder {
    /// Checks and parses everything of `files` but its weights (which may be empty here).
    pub fn new(files: ModelFiles) -> Result<Self> {
        let origin = &files.origin;
        let config_path = origin.join("config.json");
        let config: BertConfig = parse_json(&files.config, &config_path)?;
        config.validate(&config_path)?;

        let pooling_path = files.pooling_path.clone();
        let pooling = match &files.pooling {
            Some(bytes) => {
                let p: PoolingConfig = parse_json(bytes, &pooling_path)?;
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

        let max_len = files.max_seq_length.unwrap_or(config.max_input_len());
        if max_len < 2 {
            let (path, field) = match files.max_seq_length {
                Some(_) => (origin.join("sentence_bert_config.json"), "max_seq_length"),
                None => (config_path.clone(), "max_position_embeddings"),
            };
            let message = format!("{max_len} tokens leave no room for a token between the special tokens");
            return Err(Error::Config { path, field: field.into(), message });
        }
        if max_len > config.max_input_len() {
            return Err(Error::Config {
                path: origin.join("sentence_bert_config.json"),
                field: "max_seq_length".into(),
                message: format!(
                    "{max_len} exceeds the {} tokens the model's positions cover (config.json max_position_embeddings {}{})",
                    config.max_input_len(),
                    config.max_position_embeddings,
                    match config.position_offset() {
                        0 => String::new(),
                        off => format!(", of which the first {off} come before the first token"),
                    }
                ),
            });
        }
        let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, &origin.join("tokenizer.json"), max_len, files.lower_case)?;
        check_vocab(&tokenizer, &config, &origin.join("tokenizer.json"))?;
        Ok(PreparedEncoder { config, tokenizer, pooling, modules: files.modules, normalize: files.normalize, extras: files.extras, origin: files.origin })
    }

    /// The encoder, with the weights of `model.safetensors` (`weights`, in any precision of
    /// [`Precision`]) put on `device`: each tensor goes from these bytes into its device
    /// buffer in one pass. An int8 file on the CPU backend computes in int8 natively
    /// ([`SentenceEncoder::with_compute`] says otherwise), and so in wasm with SIMD (the browser's CPU
    /// path); on GPUs in f32.
    pub fn load(self, weights: &[u8], device: &Device) -> Result<SentenceEncoder> {
        let source = WeightSource::from_bytes(weights, &self.origin.join("model.safetensors"), device)?;
        self.load_from(source, device)
    }

    /// A `model.safetensors` for this model that arrives in pieces (a download's chunks): each
    /// tensor is converted as its bytes come in; [`Self::load_incoming`] then loads it.
    pub fn incoming_weights(&self) -> IncomingWeights {
        let mut names = DenseWeights::default();
        // Parameters are initialised lazily: this model of the right shape allocates nothing.
        // Naming them cannot fail; were a name missed, its tensor would be rearranged on load.
        let mut model = BertModel::init(&self.config, &Device::flex());
        let _ = model.visit_params(&self.config, &mut names);
        IncomingWeights::new(names.0)
    }

    /// [`Self::load`] of a file received through [`Self::incoming_weights`]: the same checks
    /// and errors, the same values, with the tensors converted while it arrived taken as they are.
    pub fn load_incoming(self, weights: IncomingWeights, device: &Device) -> Result<SentenceEncoder> {
        let (bytes, converted) = weights.finish();
        let mut source = WeightSource::from_bytes(&bytes, &self.origin.join("model.safetensors"), device)?;
        source.adopt(converted);
        self.load_from(source, device)
    }

    fn load_from(self, mut source: WeightSource<'_>, device: &Device) -> Result<SentenceEncoder> {
        source.check_fits(&self.config, &self.origin.join("config.json"))?;
        let int8_file = source.holds_int8();
        let mut model = BertModel::init(&self.config, device);
        model.visit_params(&self.config, &mut source)?;
        let mut modules = Vec::with_capacity(self.modules.len());
        let mut width = self.config.hidden_size;
        for spec in &self.modules {
            modules.push(HeadModule::load(spec, width, &self.origin, device)?);
            width = spec.out_width(width);
        }
        let head = Head { pooling: self.pooling, modules, normalize: self.normalize };
        let mut encoder = SentenceEncoder::from_parts(self.config, model, self.tokenizer, head, self.extras, device);
        // In the browser only where the module has wasm SIMD (scripts/build-wasm.sh's build):
        // without it the int8 products are a scalar loop, slower than f32's.
        if int8_file && OpPath::for_device(device) == OpPath::Host && cfg!(any(not(target_family = "wasm"), target_feature = "simd128")) {
            encoder.int8 = Some(std::sync::Arc::new(encoder.model.int8_layers()));
        }
        Ok(encoder)
    }
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
    /// Files of the model folder kept for the folders saved from it (prompts, tokenizer
    /// companions).
    pub extras: FolderExtras,
    /// Text put before every input of [`Self::embed`] (a prompt of the folder's
    /// `config_sentence_transformers.json`; its `default_prompt_name` at first).
    prompt: Option<String>,
    device: Device,
    batch_size: usize,
    /// The dense layers in int8 when the encoder computes in int8 ([`crate::compute`]).
    pub(crate) int8: Option<std::sync::Arc<Int8Layers>>,
}

impl SentenceEncoder {
    /// Loads a model folder onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::from_files(ModelFiles::read_dir(dir)?, device)
    }

    /// Builds the encoder from the raw files of a model folder.
    pub fn from_files(mut files: ModelFiles, device: &Device) -> Result<Self> {
        let weights = std::mem::take(&mut files.weights);
        PreparedEncoder::new(files)?.load(&weights, device)
    }

    /// Assembles an encoder from its parts (the trainer evaluates its model this way). The
    /// folder's default prompt, if it names one, is selected.
    pub fn from_parts(config: BertConfig, model: BertModel, tokenizer: TextTokenizer, head: Head, extras: FolderExtras, device: &Device) -> Self {
        let prompt = extras.default_prompt_name().and_then(|name| extras.prompt(name)).map(str::to_string);
        SentenceEncoder { config, model, tokenizer, head, extras, prompt, device: device.clone(), batch_size: DEFAULT_BATCH_SIZE, int8: None }
    }

    /// Selects the prompt `name` of the folder's `config_sentence_transformers.json` (e5's
    /// `"query: "`, say), put before every input of [`Self::embed`], as sentence-transformers'
    /// `encode(prompt_name=...)` does; `None` selects no prompt, not even the folder's default.
    pub fn with_prompt_name(mut self, name: Option<&str>) -> Result<Self> {
        self.prompt = match name {
            None => None,
            Some(name) => Some(
                self.extras
                    .prompt(name)
                    .ok_or_else(|| {
                        let names = self.extras.prompt_names();
                        Error::InvalidArgument(if names.is_empty() {
                            format!("prompt `{name}`: the model folder defines no prompts (config_sentence_transformers.json)")
                        } else {
                            format!("prompt `{name}` is not defined by the model folder; it has: {}", names.join(", "))
                        })
                    })?
                    .to_string(),
            ),
        };
        Ok(self)
    }

    /// The text put before every input of [`Self::embed`], if any.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    /// The device the encoder runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the sentence vectors (the last Dense module's, if the folder has one).
    pub fn dim(&self) -> usize {
        self.head.width(self.config.hidden_size)
    }

    /// The inference batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
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
    /// The selected prompt ([`Self::with_prompt_name`]) is put before each text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_ids(&self.prompted_ids(texts)?)
    }

    /// Token ids of each text with the selected prompt put before it.
    fn prompted_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        match &self.prompt {
            Some(prompt) => {
                let prompted: Vec<String> = texts.iter().map(|t| format!("{prompt}{t}")).collect();
                self.tokenize(&prompted.iter().map(String::as_str).collect::<Vec<_>>())
            }
            None => self.tokenize(texts),
        }
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
            crate::host_reads::note();
            self.batch_embeddings(ids, chunk, model).try_into_vec_as::<f32>().map_err(Error::execution)
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
        self.scatter(ids.len(), &chunks, values)
    }

    /// [`Self::embed`] with asynchronous reads: what a browser's WebGPU device needs (it cannot
    /// block on a read). Batches run one after the other.
    pub async fn embed_async(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_async_with(texts, |_, _| async { Ok(()) }).await
    }

    /// [`Self::embed_async`] that awaits `between(done, total)` before every batch after the
    /// first (`done` of the `total` inputs embedded so far): a browser gives its event loop a
    /// turn there and reads its cancel signal; an error from it ends the call with that error.
    pub async fn embed_async_with<F, Fut>(&self, texts: &[&str], mut between: F) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let ids = self.prompted_ids(texts)?;
        let chunks = self.length_sorted_batches(&ids);
        let mut values = Vec::with_capacity(chunks.len());
        let mut done = 0;
        for chunk in &chunks {
            if done > 0 {
                between(done, ids.len()).await?;
            }
            crate::host_reads::note();
            let data = self.batch_embeddings(&ids, chunk, &self.model).into_data_async().await.map_err(Error::execution)?;
            values.push(data.try_into_vec_as::<f32>().map_err(Error::execution)?);
            done += chunk.len();
        }
        self.scatter(ids.len(), &chunks, values)
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
        encode_int8(model, self.int8.as_deref(), &self.head, &batch, &self.device)
    }

    /// Puts each batch's rows back at their inputs' positions. A value that is not finite (a
    /// model whose weights overflow) is an error naming the input, never a NaN handed on.
    fn scatter(&self, n: usize, chunks: &[Vec<usize>], values: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        let dim = self.dim();
        let mut out = vec![Vec::new(); n];
        for (chunk, values) in chunks.iter().zip(values) {
            if let Some(k) = values.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFiniteEmbedding { index: chunk[k / dim], value: values[k] });
            }
            for (row, &i) in chunk.iter().enumerate() {
                out[i] = values[row * dim..(row + 1) * dim].to_vec();
            }
        }
        Ok(out)
    }

    /// The weights as `model.safetensors` bytes (Hugging Face names, f32).
    pub fn safetensors_bytes(&self) -> Result<Vec<u8>> {
        self.safetensors_bytes_as(Precision::F32)
    }

    /// The weights as `model.safetensors` bytes in `precision`.
    pub fn safetensors_bytes_as(&self, precision: Precision) -> Result<Vec<u8>> {
        weights_bytes(&self.model, &self.config, precision)
    }

    /// [`Self::safetensors_bytes_as`] with asynchronous reads.
    pub async fn safetensors_bytes_async(&self, precision: Precision) -> Result<Vec<u8>> {
        weights_bytes_async(&self.model, &self.config, precision).await
    }

    /// Runs the tokenizer's own special tokens (what it makes of an empty text: `[CLS] [SEP]`,
    /// `<s> </s>`) through the model once, so that the first real call does not pay for what a
    /// device does on its first use (compiling kernels, growing its memory pools).
    /// The vector computed is not looked at.
    pub fn warm_up(&self) -> Result<()> {
        let ids = self.tokenize(&[""])?;
        crate::host_reads::note();
        self.batch_embeddings(&ids, &[0], &self.model).try_into_vec_as::<f32>().map(drop).map_err(Error::execution)
    }

    /// [`Self::warm_up`] with asynchronous reads.
    pub async fn warm_up_async(&self) -> Result<()> {
        let ids = self.tokenize(&[""])?;
        crate::host_reads::note();
        let data = self.batch_embeddings(&ids, &[0], &self.model).into_data_async().await.map_err(Error::execution)?;
        data.try_into_vec_as::<f32>().map(drop).map_err(Error::execution)
    }

    /// Whether batches run on several threads (CPU backend, not autodiff).
    fn parallel_batches(&self) -> bool {
        self.device == Device::flex() && !self.device.is_autodiff()
    }

    /// Writes the model folder in the Hugging Face + sentence-transformers layout
    /// (config.json, model.safetensors, tokenizer.json, modules.json, 1_Pooling/config.json,
    /// sentence_bert_config.json, config_sentence_transformers.json), weights in f32.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_as(dir, Precision::F32)
    }

    /// [`Self::save`] with the weights in `precision` (config.json's `torch_dtype` says which).
    pub fn save_as(&self, dir: &Path, precision: Precision) -> Result<()> {
        FolderContents { precision, ..self.folder_contents() }.save(dir)
    }

    /// What [`Self::save`] writes.
    pub fn folder_contents(&self) -> FolderContents<'_> {
        FolderContents {
            model: &self.model,
            config: &self.config,
            head: &self.head,
            tokenizer: &self.tokenizer,
            extras: &self.extras,
            precision: Precision::F32,
        }
    }
}
