//! `iftcl embed`: streams lines in, vectors out, a chunk at a time (10^6 lines are never held in
//! memory). A bad line stops the run with its line number, after every good line before it has
//! been written.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use iftcl::SentenceEncoder;
use iftcl::atomic::AtomicFile;
use iftcl::inputs::{Input, refuse_input_as_output};

use crate::args::ModelArgs;
use crate::stdout::StdoutError;

/// Lines read and embedded per chunk.
const CHUNK: usize = 4096;

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Read from this file instead of stdin.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Each input line is a JSON string (so empty strings, tabs and newlines survive).
    #[arg(long)]
    jsonl: bool,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let (source_name, reader): (String, Box<dyn Read>) = match &args.input {
        Some(p) => (
            p.display().to_string(),
            Box::new(std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?),
        ),
        None => ("<stdin>".into(), Box::new(std::io::stdin().lock())),
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    // The output file is checked and opened before the model loads: a bad path fails at once.
    // It is written under a temporary name and renamed at the end, so that a run that fails
    // leaves no half-written file (and an older file of that name untouched).
    let mut file = match &args.output {
        Some(p) => {
            let mut inputs = vec![match &args.input {
                Some(i) => Input::new(format!("the input ({})", i.display()), i),
                None => Input::new("the input (stdin)", STDIN),
            }];
            inputs.extend(args.model.local_folder().map(|m| Input::new(format!("a file of the model folder (--model {})", m.display()), m)));
            refuse_input_as_output("--output", p, &inputs)?;
            #[cfg(not(unix))]
            refuse_stdin_as_output(args.input.is_none(), p)?;
            Some(AtomicFile::create(p)?)
        }
        None => None,
    };
    let (encoder, _) = args.model.load()?;
    let embedded = match &mut file {
        Some(f) => {
            let target = format!("{} (nothing was written to it)", f.path().display());
            stream(&mut reader, f, &encoder, &source_name, args.jsonl, anyhow::Error::from).with_context(|| format!("embedding into {target}"))
        }
        None => stream(&mut reader, &mut crate::stdout::stdout(), &encoder, &source_name, args.jsonl, |e| StdoutError(e).into()),
    };
    embedded?;
    if let Some(f) = file {
        f.commit()?;
    }
    Ok(())
}

/// The file stdin reads from, as a path (compared by identity, never opened; absent on
/// Windows, where [`refuse_stdin_as_output`] compares handles).
const STDIN: &str = "/dev/stdin";

/// Without `/dev/stdin`: refuses an output file that is the file stdin reads.
#[cfg(not(unix))]
fn refuse_stdin_as_output(reads_stdin: bool, output: &std::path::Path) -> Result<()> {
    use same_file::Handle;
    let regular = std::fs::metadata(output).is_ok_and(|m| m.is_file());
    if reads_stdin && regular && Handle::stdin().ok().zip(Handle::from_path(output).ok()).is_some_and(|(a, b)| a == b) {
        anyhow::bail!("--output {} is the input (stdin): writing it would destroy what it reads; choose another output file", output.display());
    }
    Ok(())
}

/// Embeds every line of `reader` into `out`, a chunk at a time; a bad line stops the run after
/// every line before it has been written. `write_error` turns a failed write into the error
/// reported (stdout's are [`StdoutError`]s: a closed pipe ends the command quietly).
fn stream(
    reader: &mut impl BufRead,
    out: &mut impl Write,
    encoder: &SentenceEncoder,
    source_name: &str,
    jsonl: bool,
    write_error: impl Fn(std::io::Error) -> anyhow::Error,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut line_no = 0usize;
    let mut buf = Vec::new();
    let mut chunk: Vec<String> = Vec::with_capacity(CHUNK);
    let mut pending_error = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).with_context(|| format!("cannot read {source_name}"))?;
        if n > 0 {
            line_no += 1;
            match parse_line(&buf, jsonl) {
                Ok(text) => chunk.push(text),
                Err(message) => pending_error = Some(anyhow!("{source_name}:{line_no}: {message}")),
            }
        }
        if chunk.len() == CHUNK || n == 0 || pending_error.is_some() {
            let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let first = line_no + 1 - chunk.len() - usize::from(pending_error.is_some());
            let vectors = encoder.embed(&texts).map_err(|e| match e {
                // Name the line whose embedding is not finite.
                iftcl::Error::NonFiniteEmbedding { index, value } => anyhow!(
                    "{source_name}:{}: the model gives a non-finite embedding ({value}): its weights overflow (a model saved after training diverged?)",
                    first + index
                ),
                e => e.into(),
            })?;
            for v in vectors {
                serde_json::to_writer(&mut out, &v).map_err(|e| write_error(e.into()))?;
                out.write_all(b"\n").map_err(&write_error)?;
            }
            chunk.clear();
        }
        if let Some(e) = pending_error {
            out.flush().map_err(&write_error)?;
            return Err(e);
        }
        if n == 0 {
            break;
        }
    }
    out.flush().map_err(&write_error)
}

/// One input line (without its line ending) as text.
fn parse_line(raw: &[u8], jsonl: bool) -> std::result::Result<String, String> {
    let mut raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = std::str::from_utf8(raw).map_err(|e| format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1))?;
    if jsonl {
        serde_json::from_str::<String>(text).map_err(|e| format!("not a JSON string ({e})"))
    } else {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn lines_parse() {
        assert_eq!(parse_line(b"hello\r\n", false).unwrap(), "hello");
        assert_eq!(parse_line(b"\"a\\tb\"\n", true).unwrap(), "a\tb");
        assert_eq!(parse_line(b"\"\"", true).unwrap(), "");
        assert!(parse_line(b"\xff\xfe\n", false).unwrap_err().contains("UTF-8"));
        assert!(parse_line(b"plain\n", true).unwrap_err().contains("JSON"));
    }
}
