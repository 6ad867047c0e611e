//! `iftcl similarity`: cosine similarity of two sentences, or the matrix of more.

use anyhow::Result;

use crate::args::ModelArgs;
use crate::outln;

/// `iftcl similarity` arguments.
#[derive(clap::Args, Debug)]
pub struct SimilarityArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Two or more sentences.
    #[arg(required = true, num_args = 2..)]
    sentences: Vec<String>,
}

/// Embeds the sentences and prints the cosine (two) or the matrix (more).
pub fn run(args: SimilarityArgs) -> Result<()> {
    let (encoder, _) = args.model.load()?;
    let texts: Vec<&str> = args.sentences.iter().map(String::as_str).collect();
    let v = encoder.embed(&texts)?;
    let n = v.len();
    let mut out = crate::stdout::stdout();
    let m: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| iftcl::cosine(&v[i], &v[j])).collect()).collect();
    if args.json {
        let json = if n == 2 { serde_json::json!({ "cosine": m[0][1] }) } else { serde_json::json!({ "sentences": texts, "matrix": m }) };
        outln!(out, "{json}")?;
    } else if n == 2 {
        outln!(out, "{:.6}", m[0][1])?;
    } else {
        for (i, row) in m.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|x| format!("{x:7.4}")).collect();
            outln!(out, "[{i}] {}  {}", cells.join(" "), texts[i])?;
        }
    }
    Ok(())
}
