//! Where things are in `grace.toml`: the spans of its keys and values, so that errors
//! found after parsing name the file, line and column of the offending key.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A key of a table.
    Key(&'a str),
    /// An element of an array (an `[[array]]` table).
    Index(usize),
}

/// A parsed document with its spans (empty when the text does not parse).
pub struct Doc<'i> {
    root: Option<Spanned<DeTable<'i>>>,
}

impl<'i> Doc<'i> {
    /// Parses `text`; a document that does not parse has no spans.
    pub fn parse(text: &'i str) -> Doc<'i> {
        Doc {
            root: DeTable::parse(text).ok(),
        }
    }

    /// The value at `path`, with its span.
    pub fn value(&self, path: &[Seg<'_>]) -> Option<&Spanned<DeValue<'i>>> {
        let root = self.root.as_ref()?.get_ref();
        let mut cur: Option<&Spanned<DeValue<'i>>> = None;
        for seg in path {
            let next = match (seg, cur) {
                (Seg::Key(k), None) => entry(root, k)?.1,
                (Seg::Key(k), Some(v)) => entry(v.get_ref().as_table()?, k)?.1,
                (Seg::Index(i), Some(v)) => v.get_ref().as_array()?.get(*i)?,
                (Seg::Index(_), None) => return None,
            };
            cur = Some(next);
        }
        cur
    }

    /// The span of the key at `path` (for an array index, of the element), else of the
    /// nearest enclosing key or element that exists.
    pub fn span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        (1..=path.len()).rev().find_map(|n| self.exact(&path[..n]))
    }

    /// The span of the key at `path` itself (for an array index, of the element).
    pub fn exact(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let (last, parent) = path.split_last()?;
        match last {
            Seg::Index(_) => self.value(path).map(Spanned::span),
            Seg::Key(k) => {
                let table = if parent.is_empty() {
                    self.root.as_ref()?.get_ref()
                } else {
                    self.value(parent)?.get_ref().as_table()?
                };
                entry(table, k).map(|(key, _)| key.span())
            }
        }
    }

    /// The first of `paths` whose key exists, by [`Doc::exact`]; else the nearest
    /// enclosing key of the first path.
    pub fn first(&self, paths: &[&[Seg<'_>]]) -> Option<Range<usize>> {
        paths
            .iter()
            .find_map(|p| self.exact(p))
            .or_else(|| paths.first().and_then(|p| self.span(p)))
    }
}

/// The key and value of `key` in `table`.
fn entry<'t, 'i>(
    table: &'t DeTable<'i>,
    key: &str,
) -> Option<(
    &'t Spanned<toml::de::DeString<'i>>,
    &'t Spanned<DeValue<'i>>,
)> {
    table.iter().find(|(k, _)| k.get_ref().as_ref() == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::line_col;

    const TEXT: &str = "\
[heartbeat]
interval = \"1s\"

[[kernel]]
name = \"a\"
kind = \"exec\"
options = { command = \"x\", probe = { tcp = \"h:1\" } }

[[kernel]]
name = \"b\"
kind = \"model\"

[kernel.options]
inputs = 3
";

    fn at(d: &Doc<'_>, path: &[Seg<'_>]) -> (usize, usize) {
        let s = d.exact(path).expect("found");
        line_col(TEXT, s.start)
    }

    #[test]
    fn keys_and_array_tables_are_found_with_their_lines() {
        use Seg::{Index as I, Key as K};
        let d = Doc::parse(TEXT);
        assert_eq!(at(&d, &[K("heartbeat"), K("interval")]), (2, 1));
        assert_eq!(at(&d, &[K("kernel"), I(0), K("kind")]), (6, 1));
        assert_eq!(at(&d, &[K("kernel"), I(1), K("name")]), (10, 1));
        assert_eq!(
            at(&d, &[K("kernel"), I(0), K("options"), K("probe"), K("tcp")]),
            (7, 38)
        );
        assert_eq!(
            at(&d, &[K("kernel"), I(1), K("options"), K("inputs")]),
            (14, 1)
        );
        assert_eq!(at(&d, &[K("kernel"), I(1)]).0, 9, "the [[kernel]] line");
        assert!(d.exact(&[K("kernel"), I(1), K("command")]).is_none());
        let s = d.span(&[K("kernel"), I(1), K("command")]).expect("nearest");
        assert_eq!(line_col(TEXT, s.start).0, 9);
    }
}
