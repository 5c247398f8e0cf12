//! Whether output may carry terminal escapes (colour, line clearing): only to a
//! terminal, and never when `NO_COLOR` is set to anything but the empty string
//! (<https://no-color.org>) or `TERM` is `dumb`.

use std::io::IsTerminal;

/// Whether escapes may go to a stream that `is_terminal` says is (or is not) a terminal,
/// given the values of `NO_COLOR` and `TERM`.
pub fn escapes_allowed(is_terminal: bool, no_color: Option<&str>, term: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty) && term != Some("dumb")
}

fn from_env(is_terminal: bool) -> bool {
    let no_color = std::env::var("NO_COLOR").ok();
    let term = std::env::var("TERM").ok();
    escapes_allowed(is_terminal, no_color.as_deref(), term.as_deref())
}

/// Whether stderr may carry escapes.
pub fn stderr_escapes() -> bool {
    from_env(std::io::stderr().is_terminal())
}

/// Whether stdout may carry escapes.
pub fn stdout_escapes() -> bool {
    from_env(std::io::stdout().is_terminal())
}

#[cfg(test)]
mod tests {
    use super::escapes_allowed;

    #[test]
    fn no_color_and_dumb_terminals_turn_escapes_off() {
        assert!(escapes_allowed(true, None, Some("xterm-256color")));
        assert!(
            escapes_allowed(true, Some(""), None),
            "an empty NO_COLOR is unset"
        );
        assert!(!escapes_allowed(true, Some("1"), None));
        assert!(!escapes_allowed(true, Some("0"), None), "any value counts");
        assert!(!escapes_allowed(true, None, Some("dumb")));
        assert!(!escapes_allowed(false, None, None));
    }
}
