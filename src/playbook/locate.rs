//! Finds the line of a key in a playbook's YAML text, so that errors found after
//! parsing (an unknown action, a bad argument) can name the line to fix.
//!
//! This reads block-style YAML as people write it (one key per line, list items
//! introduced by `- `); when it cannot find a key it falls back to the nearest line it
//! knows, the step's `name:` or the first line.

/// A 1-based line and column in a YAML text; shown as `line:column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    /// The line.
    pub line: usize,
    /// The column.
    pub col: usize,
}

impl Pos {
    /// The start of the file.
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Lines of one YAML text.
pub(crate) struct Locator<'a> {
    lines: Vec<&'a str>,
}

/// Leading spaces.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The `key: value` on a line (after any `- ` list markers), with the column where the
/// key starts; quotes around the value are removed and comments dropped.
fn key_value(line: &str) -> Option<(usize, &str, &str)> {
    let mut col = indent(line);
    let mut rest = &line[col..];
    while let Some(r) = rest.strip_prefix("- ") {
        let r2 = r.trim_start_matches(' ');
        col += 2 + (r.len() - r2.len());
        rest = r2;
    }
    let (k, v) = rest.split_once(':')?;
    let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
    if k.is_empty() || k.contains(' ') {
        return None;
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
    Some((col, k, v))
}

impl<'a> Locator<'a> {
    /// A locator over `text`.
    pub(crate) fn new(text: &'a str) -> Locator<'a> {
        Locator {
            lines: text.lines().collect(),
        }
    }

    /// Where a top-level `key:` (column 0) is, or the start of the file.
    pub(crate) fn top(&self, key: &str) -> Pos {
        self.lines
            .iter()
            .position(|l| matches!(key_value(l), Some((0, k, _)) if k == key))
            .map_or(Pos::START, |i| Pos {
                line: i + 1,
                col: 1,
            })
    }

    /// Where the key of 0-based line `i` is (its first non-blank column without one).
    fn pos(&self, i: usize) -> Pos {
        let l = self.lines.get(i).copied().unwrap_or_default();
        let col = key_value(l).map_or_else(|| indent(l), |(c, _, _)| c);
        Pos {
            line: i + 1,
            col: col + 1,
        }
    }

    /// The 0-based line range of the list item that holds `name: <step>`.
    fn step_block(&self, step: &str) -> Option<(usize, usize)> {
        let at = self
            .lines
            .iter()
            .position(|l| matches!(key_value(l), Some((_, "name", v)) if v == step))?;
        let (name_col, _, _) = key_value(self.lines[at])?;
        // The item starts at the nearest line at or above with a `- ` left of the key.
        let start = (0..=at).rev().find(|&i| {
            let l = self.lines[i];
            let ind = indent(l);
            l[ind..].starts_with("- ") && ind < name_col
        })?;
        let dash = indent(self.lines[start]);
        let end = (start + 1..self.lines.len())
            .find(|&i| {
                let l = self.lines[i];
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with('#') && indent(l) <= dash
            })
            .unwrap_or(self.lines.len());
        Some((start, end))
    }

    /// Where `key:` is inside the step named `step` (the first match, nested keys such
    /// as arguments included); else the step's `name:`; else the start of the file.
    pub(crate) fn in_step(&self, step: &str, key: &str) -> Pos {
        let Some((start, end)) = self.step_block(step) else {
            return Pos::START;
        };
        (start..end)
            .find(|&i| matches!(key_value(self.lines[i]), Some((_, k, _)) if k == key))
            .or_else(|| {
                (start..end).find(
                    |&i| matches!(key_value(self.lines[i]), Some((_, "name", v)) if v == step),
                )
            })
            .map_or(self.pos(start), |i| self.pos(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: p
slo: 30s
steps:
  - action: wait
    name: first
    args:
      duration: 1s
  - name: \"second\"
    parallel:
      - name: a
        action: restart_kernel
        args: { kernel: x }
      - name: b   # comment
        action: bogus
  - name: third
    action: notify
";

    #[test]
    fn finds_top_level_keys_and_keys_inside_steps() {
        let l = Locator::new(TEXT);
        let at = |p: Pos| (p.line, p.col);
        assert_eq!(at(l.top("slo")), (2, 1));
        assert_eq!(at(l.top("missing")), (1, 1));
        assert_eq!(at(l.in_step("first", "action")), (4, 5), "key before name");
        assert_eq!(at(l.in_step("first", "duration")), (7, 7));
        assert_eq!(at(l.in_step("b", "action")), (14, 9));
        assert_eq!(at(l.in_step("second", "parallel")), (9, 5));
        assert_eq!(at(l.in_step("third", "action")), (16, 5));
        assert_eq!(
            at(l.in_step("third", "retries")),
            (15, 5),
            "falls back to the name"
        );
        assert_eq!(at(l.in_step("nope", "action")), (1, 1));
        assert_eq!(l.in_step("first", "duration").to_string(), "7:7");
    }
}
