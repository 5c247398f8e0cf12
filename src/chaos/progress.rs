//! What the runner tells the person watching, as events; the command line draws them
//! as one progress bar line per scenario on a terminal and as plain lines otherwise.

use std::io::Write;

use super::report::ScenarioReport;

/// Something that happened while a scenario ran.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A scenario begins; `planned` seconds is its injection plus its SLO.
    Started {
        /// Scenario name.
        name: &'a str,
        /// Expected length, seconds.
        planned: f64,
    },
    /// A phase (`starting an instance`, `waiting for the steady state`).
    Phase {
        /// Scenario name.
        name: &'a str,
        /// What is going on.
        text: &'a str,
    },
    /// One observation was made.
    Tick {
        /// Scenario name.
        name: &'a str,
        /// Seconds since the first injection.
        t: f64,
        /// Expected length, seconds.
        planned: f64,
        /// Whether the steady state holds.
        steady: bool,
    },
    /// A fault was injected, detected or recovered from.
    Fault {
        /// Scenario name.
        name: &'a str,
        /// Seconds since the first injection.
        t: f64,
        /// `injected`, `detected`, `recovered`, `failed`.
        what: &'a str,
        /// The fault and any detail.
        text: &'a str,
    },
    /// The scenario ended.
    Finished {
        /// Its report.
        report: &'a ScenarioReport,
    },
}

/// Receives the runner's events.
pub trait Progress: Send {
    /// One event.
    fn event(&mut self, e: Event<'_>);
}

/// Ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&mut self, _: Event<'_>) {}
}

/// Plain lines, one per event except ticks (for logs and pipes).
#[derive(Debug)]
pub struct Lines<W: Write + Send>(pub W);

impl<W: Write + Send> Progress for Lines<W> {
    fn event(&mut self, e: Event<'_>) {
        let w = &mut self.0;
        let _ = match e {
            Event::Started { name, .. } => writeln!(w, "{name}: starting"),
            Event::Phase { name, text } => writeln!(w, "{name}: {text}"),
            Event::Tick { .. } => Ok(()),
            Event::Fault {
                name,
                t,
                what,
                text,
            } => writeln!(w, "{name}: t={t:7.3}s {what:<9} {text}"),
            Event::Finished { report } => writeln!(
                w,
                "{}: {} (score {})",
                report.name,
                if report.passed() { "PASS" } else { "FAIL" },
                report.assessment.score
            ),
        };
        let _ = w.flush();
    }
}

/// A bar redrawn in place on one terminal line per scenario.
#[derive(Debug)]
pub struct Bar<W: Write + Send> {
    out: W,
    status: String,
    events: String,
}

impl<W: Write + Send> Bar<W> {
    /// A bar drawing on `out`.
    pub fn new(out: W) -> Self {
        Bar {
            out,
            status: String::new(),
            events: String::new(),
        }
    }
}

/// The bar itself: `[#####-----]` for `done` out of `total`.
pub fn bar(done: f64, total: f64, width: usize) -> String {
    let frac = if total > 0.0 {
        (done / total).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let full = (frac * width as f64).round() as usize;
    format!("[{}{}]", "#".repeat(full), "-".repeat(width - full))
}

impl<W: Write + Send> Progress for Bar<W> {
    fn event(&mut self, e: Event<'_>) {
        let line = match e {
            Event::Started { name, .. } => format!("{name:<16} starting"),
            Event::Phase { name, text } => format!("{name:<16} {text}"),
            Event::Tick {
                name,
                t,
                planned,
                steady,
            } => {
                self.status = format!(
                    "{name:<16} {} {t:6.1}s steady state {}",
                    bar(t, planned, 24),
                    if steady { "ok     " } else { "FAILING" }
                );
                format!("{}{}", self.status, self.events)
            }
            Event::Fault { what, .. } => {
                self.events = match what {
                    "injected" => format!("{} +inj", self.events),
                    "detected" => format!("{} +det", self.events),
                    "recovered" => format!("{} +rec", self.events),
                    _ => format!("{} !{what}", self.events),
                };
                let tail: String = self
                    .events
                    .chars()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                self.events = tail;
                format!("{}{}", self.status, self.events)
            }
            Event::Finished { report } => {
                self.status.clear();
                self.events.clear();
                let _ = write!(
                    self.out,
                    "\r\x1b[2K{:<16} {} score {}\n",
                    report.name,
                    if report.passed() { "PASS" } else { "FAIL" },
                    report.assessment.score
                );
                let _ = self.out.flush();
                return;
            }
        };
        let _ = write!(self.out, "\r\x1b[2K{line}");
        let _ = self.out.flush();
    }
}
