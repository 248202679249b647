//! The pages keep their word: every relative link in the README pages and docs/ leads to a
//! file that exists (and to a heading there, for an `#anchor`), and every test the
//! Python-to-Rust maps name as proof is a function in the code.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, README.zh-CN.md and every page under docs/.
fn pages() -> std::io::Result<Vec<PathBuf>> {
    let mut pages = vec![root().join("README.md"), root().join("README.zh-CN.md")];
    for entry in fs::read_dir(root().join("docs"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "md") {
            pages.push(path);
        }
    }
    Ok(pages)
}

/// The targets of a page's Markdown links, `[text](target)`.
fn links(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

/// The anchor GitHub gives a heading: lower case, spaces as hyphens, other punctuation gone.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings (`## Title`).
fn anchors(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix('#'))
        .filter_map(|heading| heading.trim_start_matches('#').strip_prefix(' '))
        .map(anchor)
        .collect()
}

#[test]
fn every_relative_link_leads_somewhere() -> TestResult {
    let mut checked = 0;
    for page in pages()? {
        let text = fs::read_to_string(&page)?;
        let dir = page.parent().unwrap_or(Path::new("."));
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            assert!(target.exists(), "{}: {link} leads nowhere", page.display());
            if !fragment.is_empty() {
                let headings = anchors(&fs::read_to_string(&target)?);
                assert!(
                    headings.contains(fragment),
                    "{}: no heading #{fragment} in {}",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: the link reader is broken"
    );
    Ok(())
}

/// Every function named in a source file under `dir`, recursively.
fn functions(dir: &Path, found: &mut HashSet<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            functions(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = fs::read_to_string(&path)?;
            for (at, _) in text.match_indices("fn ") {
                let name: String = text[at + 3..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
    }
    Ok(())
}

#[test]
fn every_test_the_maps_name_exists() -> TestResult {
    let mut defined = HashSet::new();
    for dir in ["src", "tests", "benches"] {
        functions(&root().join(dir), &mut defined)?;
    }
    for map in ["docs/from-python.md", "docs/from-python.zh-CN.md"] {
        let text = fs::read_to_string(root().join(map))?;
        // Test names are written in backquotes, as snake_case of some length.
        let named: Vec<&str> = text
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| {
                word.len() > 12
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
            .collect();
        assert!(
            named.len() > 50,
            "{map}: only {} test names found",
            named.len()
        );
        for name in named {
            assert!(
                defined.contains(name),
                "{map} names {name}, which is not in the code"
            );
        }
    }
    Ok(())
}

/// The Rust primers quote examples/ as it is: each Rust block that starts with a
/// `// examples/FILE.rs:LINE` comment holds that file's lines from LINE on, unchanged.
#[test]
fn the_primers_quote_the_examples_as_they_are() -> TestResult {
    for primer in ["docs/rust-primer.md", "docs/rust-primer.zh-CN.md"] {
        let text = fs::read_to_string(root().join(primer))?;
        let mut quoted = 0;
        for block in text.split("```rust\n").skip(1) {
            let block = block.split("```").next().unwrap_or_default();
            let mut lines = block.lines();
            let first = lines.next().unwrap_or_default();
            let place = first.strip_prefix("// examples/").ok_or(first)?;
            let (file, line) = place.split_once(':').ok_or(place)?;
            let source = fs::read_to_string(root().join("examples").join(file))?;
            let from: usize = line.parse()?;
            let mut source = source.lines().skip(from - 1);
            for quote in lines {
                assert_eq!(Some(quote), source.next(), "{primer}: {place}");
            }
            quoted += 1;
        }
        assert!(quoted >= 10, "{primer}: only {quoted} quotes");
    }
    Ok(())
}

/// Every source file a page names by its path (`src/tcp/framer.rs`, `tests/cli.rs`, …) exists.
#[test]
fn every_source_file_the_pages_name_exists() -> TestResult {
    let mut named = 0;
    for page in pages()? {
        let text = fs::read_to_string(&page)?;
        for dir in ["src/", "tests/", "examples/", "benches/", "fuzz/"] {
            for (at, _) in text.match_indices(dir) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_') {
                    continue;
                }
                let path: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || "/_-.".contains(*c))
                    .collect();
                let path = path.strip_suffix('.').unwrap_or(&path);
                if path.ends_with(".rs") {
                    named += 1;
                    let page = page.display();
                    assert!(root().join(path).exists(), "{page} names {path}");
                }
            }
        }
    }
    assert!(named > 20, "only {named} paths found");
    Ok(())
}
