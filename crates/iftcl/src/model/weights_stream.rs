//! `model.safetensors` converted while it arrives: [`IncomingWeights`] takes the file in pieces
//! (a download's chunks), reads the header as soon as it is there, and widens (or dequantises,
//! and for a dense layer's weight transposes) each tensor's rows as their bytes come in, so
//! that little is left to do when the last byte arrives.
//!
//! Nothing here decides whether the file is valid: [`crate::PreparedEncoder::load_incoming`]
//! reads the whole file with the same checks as a file in memory and takes a converted
//! tensor's values only for a tensor those checks accepted, of the same shape. The values are
//! those of the one-pass load bit for bit (one conversion routine, `model/widen.rs`). A header
//! this reader does not understand only means that everything is converted at the end.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::int8::{SCALE_SUFFIX, VALUES_SUFFIX};
use super::weights::{Converted, key_of};
use super::widen::{Element, Layout, widen_rows};

/// The safetensors header's size limit (the safetensors crate's).
const MAX_HEADER: usize = 100_000_000;
/// Rows of a transposed matrix are converted in whole tiles of this many (but the last).
const TILE_ROWS: usize = 32;

/// A safetensors file arriving in pieces ([`Self::push`]), its tensors converted on the way.
#[derive(Debug)]
pub struct IncomingWeights {
    bytes: Vec<u8>,
    /// The names (as the encoder asks for them) of the dense layers' weights, which are
    /// transposed on load.
    transposed: BTreeSet<String>,
    plan: Plan,
    /// Tensors before this one in `plan` are converted.
    first_open: usize,
}

#[derive(Debug)]
enum Plan {
    /// The header is not all there yet.
    Waiting,
    /// The tensors to convert, by position in the file.
    Tensors(Vec<Early>),
    /// A header this reader does not follow: everything is converted once the file is there.
    Off,
}

/// A tensor of the header: dtype, shape, and where its bytes start and end in the file.
type Entry = (String, Vec<usize>, usize, usize);

/// One tensor converted as its rows arrive.
#[derive(Debug)]
struct Early {
    /// The file's name of the tensor.
    name: String,
    kind: Kind,
    layout: Layout,
    /// Where its bytes are in the file.
    start: usize,
    /// Rows converted so far.
    done: usize,
    values: Vec<f32>,
    /// The first position in `values` that is not finite.
    bad: Option<usize>,
}

#[derive(Debug)]
enum Kind {
    Float(Element<'static>),
    /// Int8 rows, whose scales are the F32 vector at `scales` (file offsets); read once there.
    Int8 { scales: (usize, usize), read: Option<Vec<f32>> },
}

impl Early {
    fn element_size(&self) -> usize {
        match self.kind {
            Kind::Float(e) => e.size(),
            Kind::Int8 { .. } => 1,
        }
    }

    fn complete(&self) -> bool {
        self.done == self.layout.rows
    }

    /// Converts the rows whose bytes are in `bytes` (the file so far).
    fn advance(&mut self, bytes: &[u8]) {
        let row_bytes = self.layout.cols * self.element_size();
        if self.complete() || bytes.len() <= self.start || row_bytes == 0 {
            return;
        }
        if let Kind::Int8 { scales: (from, to), read } = &mut self.kind
            && read.is_none()
        {
            let Some(raw) = bytes.get(*from..*to) else { return };
            *read = Some(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
        }
        let mut ready = ((bytes.len() - self.start) / row_bytes).min(self.layout.rows);
        if self.layout.transpose && ready < self.layout.rows {
            ready -= ready % TILE_ROWS;
        }
        if ready <= self.done {
            return;
        }
        if self.values.capacity() == 0 {
            self.values.reserve_exact(self.layout.len());
        }
        let element = match &self.kind {
            Kind::Float(e) => *e,
            Kind::Int8 { read, .. } => Element::Int8 { scales: read.as_deref().unwrap_or_default() },
        };
        let data = &bytes[self.start + self.done * row_bytes..self.start + ready * row_bytes];
        if let Some(at) = widen_rows(element, data, self.layout, self.done..ready, &mut self.values) {
            self.bad = Some(self.bad.map_or(at, |b| b.min(at)));
        }
        self.done = ready;
    }
}

impl IncomingWeights {
    /// An empty file whose dense-layer weights (by the names the encoder asks for, `X.weight`)
    /// are `transposed`.
    pub(crate) fn new(transposed: BTreeSet<String>) -> Self {
        IncomingWeights { bytes: Vec::new(), transposed, plan: Plan::Waiting, first_open: 0 }
    }

    /// The next piece of the file, converted as far as its bytes allow.
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if let Plan::Waiting = self.plan {
            self.plan = self.read_header();
            if let Some(total) = self.expected_len() {
                self.bytes.reserve_exact(total.saturating_sub(self.bytes.len()));
            }
        }
        let Plan::Tensors(tensors) = &mut self.plan else { return };
        for early in tensors.iter_mut().skip(self.first_open) {
            early.advance(&self.bytes);
        }
        while tensors.get(self.first_open).is_some_and(Early::complete) {
            self.first_open += 1;
        }
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing has arrived.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Tensors converted whole so far (of those the encoder reads; an int8 matrix counts once).
    pub fn converted(&self) -> usize {
        match &self.plan {
            Plan::Tensors(tensors) => tensors.iter().filter(|t| t.complete()).count(),
            Plan::Waiting | Plan::Off => 0,
        }
    }

    /// Whether some tensor so far was a dense layer's weight, converted transposed.
    pub fn transposed_any(&self) -> bool {
        matches!(&self.plan, Plan::Tensors(tensors) if tensors.iter().any(|t| t.complete() && t.layout.transpose))
    }

    /// The file's size as its header gives it, once the header is there.
    pub fn expected_len(&self) -> Option<usize> {
        let n = self.header_len()?;
        let Some(Value::Object(header)) = serde_json::from_slice::<Value>(self.bytes.get(8..8 + n)?).ok() else { return None };
        let end = header.values().filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64()).max().unwrap_or(0);
        Some(8 + n + usize::try_from(end).ok()?)
    }

    fn header_len(&self) -> Option<usize> {
        let n = u64::from_le_bytes(self.bytes.get(..8)?.try_into().ok()?);
        usize::try_from(n).ok().filter(|&n| n <= MAX_HEADER)
    }

    /// The plan of conversions from the header, once it is there.
    fn read_header(&self) -> Plan {
        if self.bytes.len() < 8 {
            return Plan::Waiting;
        }
        let Some(n) = self.header_len() else { return Plan::Off };
        let Some(text) = self.bytes.get(8..8 + n) else { return Plan::Waiting };
        let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(text) else { return Plan::Off };
        let base = 8 + n;
        // (dtype, shape, start, end) of a tensor of the header, its offsets made absolute.
        let entry = |v: &Value| -> Option<Entry> {
            let dtype = v.get("dtype")?.as_str()?.to_string();
            let shape = v.get("shape")?.as_array()?.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect::<Option<Vec<_>>>()?;
            let offsets = v.get("data_offsets")?.as_array()?;
            let at = |i: usize| offsets.get(i)?.as_u64().and_then(|o| usize::try_from(o).ok())?.checked_add(base);
            Some((dtype, shape, at(0)?, at(1)?))
        };
        let mut tensors = Vec::new();
        for (name, v) in &header {
            let (Some(key), Some((dtype, shape, start, end))) = (key_of(name), entry(v)) else { continue };
            let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            let (kind, weight) = match (dtype.as_str(), key.strip_suffix(VALUES_SUFFIX)) {
                ("I8", Some(weight)) if shape.len() == 2 => {
                    let scale_name = format!("{}{SCALE_SUFFIX}", name.strip_suffix(VALUES_SUFFIX).unwrap_or(name));
                    let Some((scale_dtype, scale_shape, from, to)) = header.get(&scale_name).and_then(entry) else { continue };
                    if scale_dtype != "F32" || scale_shape != [shape[0]] || to.checked_sub(from) != Some(4 * shape[0]) {
                        continue;
                    }
                    (Kind::Int8 { scales: (from, to), read: None }, weight)
                }
                ("F32", _) if key.ends_with(SCALE_SUFFIX) => continue,
                (dtype, _) => {
                    let element = match dtype {
                        "F32" => Element::F32,
                        "F16" => Element::F16,
                        "BF16" => Element::Bf16,
                        "F64" => Element::F64,
                        _ => continue,
                    };
                    (Kind::Float(element), key)
                }
            };
            let size = match kind {
                Kind::Float(e) => e.size(),
                Kind::Int8 { .. } => 1,
            };
            if elements.and_then(|n| n.checked_mul(size)) != end.checked_sub(start) {
                continue;
            }
            let layout = Layout::of(&shape, self.transposed.contains(weight));
            tensors.push(Early { name: name.clone(), kind, layout, start, done: 0, values: Vec::new(), bad: None });
        }
        tensors.sort_by_key(|t| t.start);
        Plan::Tensors(tensors)
    }

    /// The file's bytes, and the values of every tensor converted whole, by the file's name.
    pub(crate) fn finish(self) -> (Vec<u8>, BTreeMap<String, Converted>) {
        let converted = match self.plan {
            Plan::Tensors(tensors) => tensors.into_iter().filter(Early::complete).map(|t| (t.name, Converted { layout: t.layout, values: t.values, bad: t.bad })).collect(),
            Plan::Waiting | Plan::Off => BTreeMap::new(),
        };
        (self.bytes, converted)
    }
}
