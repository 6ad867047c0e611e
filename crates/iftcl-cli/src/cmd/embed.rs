//! `iftcl embed`: streams lines in, vectors out, a chunk at a time (10^6 lines are never held in
//! memory). A bad line stops the run with its line number, after every good line before it has
//! been written.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use crate::args::ModelArgs;

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
    let (encoder, _) = args.model.load()?;
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
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
            match parse_line(&buf, args.jsonl) {
                Ok(text) => chunk.push(text),
                Err(message) => pending_error = Some(anyhow!("{source_name}:{line_no}: {message}")),
            }
        }
        if chunk.len() == CHUNK || n == 0 || pending_error.is_some() {
            let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for v in encoder.embed(&texts)? {
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            chunk.clear();
        }
        if let Some(e) = pending_error {
            out.flush()?;
            return Err(e);
        }
        if n == 0 {
            break;
        }
    }
    out.flush()?;
    Ok(())
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
