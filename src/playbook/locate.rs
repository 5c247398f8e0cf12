//! Finds the line of a key in a playbook's YAML text, so that errors found after
//! parsing (an unknown action, a bad argument) can name the line to fix.
//!
//! This reads block-style YAML as people write it (one key per line, list items
//! introduced by `- `); when it cannot find a key it falls back to the nearest line it
//! knows, the step's `name:` or the first line.

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

    /// The 1-based line of a top-level `key:` (column 0), or 1.
    pub(crate) fn top(&self, key: &str) -> usize {
        self.lines
            .iter()
            .position(|l| matches!(key_value(l), Some((0, k, _)) if k == key))
            .map_or(1, |i| i + 1)
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

    /// The 1-based line of `key:` inside the step named `step` (the first match, nested
    /// keys such as arguments included); else the step's `name:` line; else 1.
    pub(crate) fn in_step(&self, step: &str, key: &str) -> usize {
        let Some((start, end)) = self.step_block(step) else {
            return 1;
        };
        (start..end)
            .find(|&i| matches!(key_value(self.lines[i]), Some((_, k, _)) if k == key))
            .or_else(|| {
                (start..end).find(
                    |&i| matches!(key_value(self.lines[i]), Some((_, "name", v)) if v == step),
                )
            })
            .map_or(start + 1, |i| i + 1)
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
        assert_eq!(l.top("slo"), 2);
        assert_eq!(l.top("missing"), 1);
        assert_eq!(l.in_step("first", "action"), 4, "key before name");
        assert_eq!(l.in_step("first", "duration"), 7);
        assert_eq!(l.in_step("b", "action"), 14);
        assert_eq!(l.in_step("second", "parallel"), 9);
        assert_eq!(l.in_step("third", "action"), 16);
        assert_eq!(l.in_step("third", "retries"), 15, "falls back to the name");
        assert_eq!(l.in_step("nope", "action"), 1);
    }
}
