//! The languages a model folder says it was trained for: the `language` field of the YAML front
//! matter of its `README.md` (the Hugging Face model card), e.g. `language: en` or a list.
//! An app shows them so a user writing in another language knows why results are poor.

use std::path::Path;

/// The model card's languages, in its order; empty when the folder has no card, the card no
/// front matter, or the front matter no `language` field.
pub fn languages(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("README.md")).map(|card| card_languages(&card)).unwrap_or_default()
}

/// [`languages`] of a card's text.
fn card_languages(card: &str) -> Vec<String> {
    let mut lines = card.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Vec::new();
    }
    let front: Vec<&str> = lines.take_while(|l| l.trim_end() != "---").collect();
    let Some(at) = front.iter().position(|l| l.starts_with("language:")) else {
        return Vec::new();
    };
    let value = front[at]["language:".len()..].trim();
    if !value.is_empty() {
        // `language: en` or `language: [en, de]`.
        let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
        return inner.split(',').map(unquoted).filter(|s| !s.is_empty()).collect();
    }
    // A block list: the `- xx` lines that follow.
    front[at + 1..].iter().map_while(|l| l.trim_start().strip_prefix("- ")).map(unquoted).filter(|s| !s.is_empty()).collect()
}

fn unquoted(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
}

#[cfg(test)]
mod tests {
    use super::card_languages;

    #[test]
    fn scalar_inline_and_block_lists_are_read() {
        assert_eq!(card_languages("---\nlanguage: en\nlicense: apache-2.0\n---\n# x"), ["en"]);
        assert_eq!(card_languages("---\nlicense: mit\nlanguage: [en, \"de\", 'fr']\n---\n"), ["en", "de", "fr"]);
        assert_eq!(card_languages("---\nlanguage:\n- multilingual\n- ar\ntags:\n- x\n---\n"), ["multilingual", "ar"]);
        assert_eq!(card_languages("---\nlanguage:\n  - en\n---\n"), ["en"]);
    }

    #[test]
    fn cards_without_the_field_give_nothing() {
        assert!(card_languages("# A model\nlanguage: en\n").is_empty(), "not front matter");
        assert!(card_languages("---\nlicense: mit\n---\nlanguage: en\n").is_empty(), "after the front matter");
        assert!(card_languages("").is_empty());
        assert!(card_languages("---\nlanguage:\ntags:\n- x\n---").is_empty());
    }
}
