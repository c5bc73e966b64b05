//! Just enough Markdown for the docs checks: fenced shell blocks, paragraphs, code spans, links, tables
//! and GitHub's heading anchors.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One page: its path in the repository and its text.
pub struct Doc {
    pub path: PathBuf,
    pub text: String,
}

impl Doc {
    /// README.md and every page under docs/.
    pub fn all(root: &Path) -> Vec<Doc> {
        let mut paths = vec![PathBuf::from("README.md")];
        let mut pages: Vec<PathBuf> = fs::read_dir(root.join("docs"))
            .expect("docs/")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        pages.sort();
        paths.extend(pages);
        (paths.into_iter())
            .map(|path| Doc {
                text: fs::read_to_string(root.join(&path)).unwrap(),
                path,
            })
            .collect()
    }

    /// Lines of fenced `sh` blocks (other fences are skipped), and the paragraphs outside any fence.
    pub fn split(&self) -> (Vec<String>, Vec<String>) {
        let (mut shell, mut paragraphs, mut current) = (vec![], vec![], String::new());
        let mut fence: Option<bool> = None; // Some(is a shell block) inside a fence
        for line in self.text.lines() {
            let trimmed = line.trim_start();
            if let Some(lang) = trimmed.strip_prefix("```") {
                fence = match fence {
                    Some(_) => None,
                    None => Some(matches!(lang.trim(), "sh" | "bash" | "shell")),
                };
                paragraphs.push(std::mem::take(&mut current));
                continue;
            }
            match fence {
                Some(true) => shell.push(line.to_string()),
                Some(false) => {}
                None if trimmed.is_empty() => paragraphs.push(std::mem::take(&mut current)),
                None => {
                    current.push_str(line);
                    current.push('\n');
                }
            }
        }
        paragraphs.push(current);
        paragraphs.retain(|p| !p.trim().is_empty());
        (shell, paragraphs)
    }

    /// Every code span outside fences.
    pub fn code_spans(&self) -> Vec<String> {
        let (_, paragraphs) = self.split();
        paragraphs.iter().flat_map(|p| code_spans(p).0).collect()
    }

    /// The anchors GitHub gives this page's headings.
    pub fn anchors(&self) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for heading in self.headings() {
            let base = slug(&heading);
            let mut anchor = base.clone();
            let mut n = 0;
            while !seen.insert(anchor.clone()) {
                n += 1;
                anchor = format!("{base}-{n}");
            }
        }
        seen
    }

    /// Heading texts (outside fences).
    pub fn headings(&self) -> Vec<String> {
        let (_, paragraphs) = self.split();
        (paragraphs.iter().flat_map(|p| p.lines()))
            .filter(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim().to_string())
            .collect()
    }

    /// The rows of the first table after the heading `heading`, each a list of cells.
    pub fn table(&self, heading: &str) -> Vec<Vec<String>> {
        let (_, paragraphs) = self.split();
        let start = (paragraphs.iter())
            .position(|p| {
                p.lines()
                    .any(|l| l.trim_start_matches('#').trim() == heading)
            })
            .unwrap_or_else(|| panic!("{}: no heading {heading:?}", self.path.display()));
        let table = (paragraphs[start..].iter())
            .find(|p| p.starts_with('|'))
            .unwrap_or_else(|| panic!("{}: no table under {heading:?}", self.path.display()));
        (table.lines().skip(2))
            .map(|row| {
                let row = row.trim().trim_start_matches('|').trim_end_matches('|');
                split_cells(row)
            })
            .collect()
    }
}

/// A table row's cells: `|` separates them, except escaped (`\|`) or inside a code span.
fn split_cells(row: &str) -> Vec<String> {
    let (mut cells, mut cell, mut in_code) = (vec![], String::new(), false);
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => cell.push(chars.next().unwrap()),
            '`' => {
                in_code = !in_code;
                cell.push(c);
            }
            '|' if !in_code => cells.push(std::mem::take(&mut cell).trim().to_string()),
            _ => cell.push(c),
        }
    }
    cells.push(cell.trim().to_string());
    cells
}

/// The code spans of a paragraph (line breaks as spaces, `\|` as `|`), and its text without them.
pub fn code_spans(paragraph: &str) -> (Vec<String>, String) {
    let text: Vec<char> = paragraph.chars().collect();
    let (mut spans, mut rest, mut i) = (vec![], String::new(), 0);
    while i < text.len() {
        if text[i] != '`' {
            rest.push(text[i]);
            i += 1;
            continue;
        }
        let run = text[i..].iter().take_while(|&&c| c == '`').count();
        match closing(&text, i + run, run) {
            Some(end) => {
                let inner: String = text[i + run..end].iter().collect();
                let inner = inner.replace('\n', " ").replace("\\|", "|");
                spans.push(strip_one_space(&inner).to_string());
                i = end + run;
            }
            None => {
                rest.extend(&text[i..i + run]);
                i += run;
            }
        }
    }
    (spans, rest)
}

/// Where a run of exactly `run` backticks starts at or after `from`.
fn closing(text: &[char], from: usize, run: usize) -> Option<usize> {
    let mut j = from;
    while j < text.len() {
        if text[j] == '`' {
            let n = text[j..].iter().take_while(|&&c| c == '`').count();
            if n == run {
                return Some(j);
            }
            j += n;
        } else {
            j += 1;
        }
    }
    None
}

fn strip_one_space(s: &str) -> &str {
    match s.strip_prefix(' ').and_then(|t| t.strip_suffix(' ')) {
        Some(t) if !t.trim().is_empty() => t,
        _ => s,
    }
}

/// The targets of a paragraph's inline links `[text](target)`, outside code spans.
pub fn links(paragraph: &str) -> Vec<String> {
    let (_, text) = code_spans(paragraph);
    let mut out = vec![];
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, code and link marks dropped, punctuation other than `-`
/// and `_` removed, spaces as `-`.
pub fn slug(heading: &str) -> String {
    (heading.replace('`', "").to_lowercase().chars())
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn markdown_reader_knows_spans_cells_links_and_anchors() {
    let (spans, rest) = code_spans("a `b` c `` d `e` `` [x](y.md#z) `f\ng`");
    assert_eq!(spans, ["b", "d `e`", "f g"]);
    assert_eq!(links(&rest), ["y.md#z"]);
    assert_eq!(
        split_cells("`--cache a\\|b` | `X` | all"),
        ["`--cache a|b`", "`X`", "all"]
    );
    assert_eq!(
        slug("The workflows' cache entries"),
        "the-workflows-cache-entries"
    );
    assert_eq!(slug("`cargo xtask` fails"), "cargo-xtask-fails");
}
