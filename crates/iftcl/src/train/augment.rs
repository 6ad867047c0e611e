//! Fraternal-twin augmentation: word repetition, word deletion or neighbour swap, one chosen per
//! sentence from a seeded RNG. Each reports its edit ratio r in [0, 1]: the fraction of the
//! sentence's words it changed, which scales the Twins Loss margin (m = beta * r).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which edit was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AugKind {
    /// Some words are repeated in place ("a man man is playing").
    Repeat,
    /// Some words are removed.
    Delete,
    /// Some adjacent words change places.
    Swap,
    /// Nothing to edit (an empty sentence).
    Identity,
}

/// An augmented sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmented {
    /// The fraternal twin's text.
    pub text: String,
    /// Fraction of the original words changed, in [0, 1].
    pub ratio: f32,
    /// The edit applied.
    pub kind: AugKind,
}

/// How strongly sentences are edited.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Smallest fraction of words to edit.
    pub min_rate: f64,
    /// Largest fraction of words to edit (a rate is drawn uniformly per sentence).
    pub max_rate: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig { min_rate: 0.1, max_rate: 0.3 }
    }
}

impl AugmentConfig {
    /// Checks `0 <= min_rate <= max_rate <= 1`.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_rate) || !(0.0..=1.0).contains(&self.max_rate) || self.min_rate > self.max_rate {
            return Err(format!("augmentation rates must satisfy 0 <= min ({}) <= max ({}) <= 1", self.min_rate, self.max_rate));
        }
        Ok(())
    }
}

/// `k` distinct positions in `0..n`, sorted.
fn positions(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = rng.random_range(i..n);
        all.swap(i, j);
    }
    let mut chosen = all[..k.min(n)].to_vec();
    chosen.sort_unstable();
    chosen
}

/// Augments one sentence.
pub fn augment(text: &str, cfg: &AugmentConfig, rng: &mut impl Rng) -> Augmented {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = words.len();
    if n == 0 {
        return Augmented { text: text.to_string(), ratio: 0.0, kind: AugKind::Identity };
    }
    let kind = if n == 1 {
        AugKind::Repeat
    } else {
        [AugKind::Repeat, AugKind::Delete, AugKind::Swap][rng.random_range(0..3)]
    };
    let rate = if cfg.max_rate > cfg.min_rate { rng.random_range(cfg.min_rate..=cfg.max_rate) } else { cfg.min_rate };
    let k = ((rate * n as f64).round() as usize).max(1);
    let (out, changed): (Vec<&str>, usize) = match kind {
        AugKind::Repeat => {
            let pos = positions(rng, n, k);
            let mut out = Vec::with_capacity(n + pos.len());
            let mut next = pos.iter().peekable();
            for (i, w) in words.iter().enumerate() {
                out.push(*w);
                if next.peek() == Some(&&i) {
                    out.push(*w);
                    next.next();
                }
            }
            (out, pos.len())
        }
        AugKind::Delete => {
            let pos = positions(rng, n, k.min(n - 1));
            let out = words.iter().enumerate().filter(|(i, _)| pos.binary_search(i).is_err()).map(|(_, w)| *w).collect();
            (out, pos.len())
        }
        AugKind::Swap => {
            // Non-overlapping adjacent pairs (i, i+1), taken from a shuffled list of starts.
            let mut out = words.clone();
            let starts = positions(rng, n - 1, n - 1);
            let mut order = starts.clone();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let mut used = vec![false; n];
            let mut swaps = 0;
            for i in order {
                if swaps == k.div_ceil(2) {
                    break;
                }
                if !used[i] && !used[i + 1] {
                    out.swap(i, i + 1);
                    used[i] = true;
                    used[i + 1] = true;
                    swaps += 1;
                }
            }
            let changed = out.iter().zip(&words).filter(|(a, b)| a != b).count();
            (out, changed)
        }
        AugKind::Identity => unreachable!("handled above"),
    };
    Augmented { text: out.join(" "), ratio: (changed as f32 / n as f32).min(1.0), kind }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const S: &str = "a young child is riding a brown horse in the field today";

    #[test]
    fn seeded_runs_repeat() {
        let cfg = AugmentConfig::default();
        let a: Vec<_> = (0..20).map(|i| augment(S, &cfg, &mut ChaCha8Rng::seed_from_u64(i))).collect();
        let b: Vec<_> = (0..20).map(|i| augment(S, &cfg, &mut ChaCha8Rng::seed_from_u64(i))).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|x| x.kind == AugKind::Repeat));
        assert!(a.iter().any(|x| x.kind == AugKind::Delete));
        assert!(a.iter().any(|x| x.kind == AugKind::Swap));
    }

    #[test]
    fn edit_ratios_match_the_edits() {
        let cfg = AugmentConfig { min_rate: 0.2, max_rate: 0.2 };
        let n = S.split_whitespace().count();
        for seed in 0..200 {
            let aug = augment(S, &cfg, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!((0.0..=1.0).contains(&aug.ratio));
            let m = aug.text.split_whitespace().count();
            match aug.kind {
                AugKind::Repeat => assert_eq!(aug.ratio, (m - n) as f32 / n as f32),
                AugKind::Delete => assert_eq!(aug.ratio, (n - m) as f32 / n as f32),
                AugKind::Swap => {
                    assert_eq!(m, n);
                    let mut x: Vec<&str> = aug.text.split_whitespace().collect();
                    let mut y: Vec<&str> = S.split_whitespace().collect();
                    let changed = x.iter().zip(&y).filter(|(a, b)| a != b).count();
                    assert_eq!(aug.ratio, changed as f32 / n as f32);
                    x.sort();
                    y.sort();
                    assert_eq!(x, y, "a swap keeps the words");
                }
                AugKind::Identity => panic!("non-empty sentence left unchanged"),
            }
            // 20% of 12 words = 2 edits (a swap of one pair changes 2 words)
            assert!(aug.ratio > 0.0 && aug.ratio <= 2.0 / n as f32 + 1e-6, "{aug:?}");
        }
    }

    #[test]
    fn short_and_empty_sentences() {
        let cfg = AugmentConfig::default();
        let one = augment("hello", &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!((one.text.as_str(), one.kind, one.ratio), ("hello hello", AugKind::Repeat, 1.0));
        let empty = augment("   ", &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!((empty.kind, empty.ratio), (AugKind::Identity, 0.0));
        for seed in 0..50 {
            let two = augment("hello world", &cfg, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!(!two.text.is_empty(), "deletion never removes every word");
        }
    }
}
