//! The timeline picture of one scenario, as hand-written SVG: lanes for the steady
//! state, serve's health, each fault (with its detection and recovery marks), each
//! incident and kernel restarts, over a time axis in seconds from the first injection.

use std::fmt::Write as _;

use super::ScenarioReport;
use crate::chaos::measure::{ProbeChange, SteadyChange};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 230.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 26.0;
const TOP: f64 = 56.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick step giving at most about ten ticks over `span` seconds.
pub(crate) fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 14] = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 10.0)
        .unwrap_or(600.0)
}

struct Scale {
    lo: f64,
    hi: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        let t = t.clamp(self.lo, self.hi);
        LEFT + (t - self.lo) / (self.hi - self.lo) * (WIDTH - LEFT - RIGHT)
    }
}

fn segments(changes: &[(f64, bool)], end: f64) -> Vec<(f64, f64, bool)> {
    changes
        .iter()
        .enumerate()
        .map(|(i, &(t, ok))| {
            let next = changes.get(i + 1).map(|c| c.0).unwrap_or(end);
            (t, next, ok)
        })
        .collect()
}

/// The SVG document.
pub fn timeline_svg(s: &ScenarioReport) -> String {
    let tl = &s.timeline;
    let a = &s.assessment;
    let last_fault = a
        .faults
        .iter()
        .map(|f| f.record.ended_at.max(f.recovered_at.unwrap_or(0.0)))
        .fold(0.0, f64::max);
    let span = tl.end.max(last_fault).max(0.1);
    let sc = Scale {
        lo: -0.05 * span,
        hi: span * 1.02,
    };
    let rows = 3 + a.faults.len() + tl.incidents.len();
    let height = TOP + rows as f64 * ROW + 50.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        o,
        r##"<text x="10" y="22" font-size="16" font-weight="bold">{} — {} — score {}</text>"##,
        esc(&s.name),
        if s.passed() { "PASS" } else { "FAIL" },
        a.score
    );
    let _ = writeln!(
        o,
        r##"<text x="10" y="42" fill="#555">SLO: recovery within {}s; time in seconds from the first injection</text>"##,
        s.max_recovery_s
    );
    // Time axis.
    let axis = TOP + rows as f64 * ROW + 8.0;
    let _ = writeln!(
        o,
        r##"<line x1="{LEFT}" x2="{}" y1="{axis}" y2="{axis}" stroke="#333"/>"##,
        WIDTH - RIGHT
    );
    let step = tick_step(sc.hi - sc.lo);
    let mut t = (sc.lo / step).ceil() * step;
    while t <= sc.hi {
        let x = sc.x(t);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
            axis + 4.0,
            axis + 18.0,
            fmt_tick(t, step)
        );
        t += step;
    }
    let mut y = TOP;
    let lane = |o: &mut String, y: f64, label: &str| {
        let _ = writeln!(
            o,
            r##"<text x="10" y="{}" fill="#222">{}</text><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#eee"/>"##,
            y + ROW * 0.62,
            esc(label),
            WIDTH - RIGHT,
            y + ROW - 1.0,
            y + ROW - 1.0
        );
    };
    // Steady state and health.
    let steady: Vec<(f64, bool)> = tl
        .steady
        .iter()
        .map(|c: &SteadyChange| (c.t, c.ok))
        .collect();
    let health: Vec<(f64, bool)> = tl
        .probes
        .get("health_ok")
        .map(|v| v.iter().map(|c: &ProbeChange| (c.t, c.ok)).collect())
        .unwrap_or_default();
    for (label, changes) in [("steady state", &steady), ("serve /health", &health)] {
        lane(&mut o, y, label);
        for (t0, t1, ok) in segments(changes, tl.end) {
            let (x0, x1) = (sc.x(t0), sc.x(t1));
            let _ = writeln!(
                o,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {t0:.3}s–{t1:.3}s</title></rect>"##,
                y + 5.0,
                (x1 - x0).max(1.0),
                ROW - 10.0,
                if ok { "#4caf50" } else { "#e53935" },
                if ok { "ok" } else { "failing" }
            );
        }
        y += ROW;
    }
    // Kernel restarts.
    lane(&mut o, y, "kernel restarts");
    let mut last: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for e in &tl.kernels {
        if let Some(prev) = last.insert(e.kernel.as_str(), e.restarts) {
            if e.restarts > prev {
                let x = sc.x(e.t);
                let _ = writeln!(
                    o,
                    r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#1e88e5" stroke-width="2"><title>{} restarted at {:.3}s</title></line>"##,
                    y + 4.0,
                    y + ROW - 4.0,
                    esc(&e.kernel),
                    e.t
                );
            }
        }
    }
    y += ROW;
    // Faults.
    for f in &a.faults {
        lane(&mut o, y, &format!("fault {}", f.record.label));
        let (x0, x1) = (sc.x(f.record.injected_at), sc.x(f.record.ended_at));
        let mid = y + ROW / 2.0;
        if let Some(r) = f.recovered_at {
            let _ = writeln!(
                o,
                r##"<line x1="{x0:.1}" x2="{:.1}" y1="{mid:.1}" y2="{mid:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
                sc.x(r)
            );
        }
        let _ = writeln!(
            o,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} injected {:.3}s, ended {:.3}s</title></rect>"##,
            y + 6.0,
            (x1 - x0).max(4.0),
            ROW - 12.0,
            if f.record.error.is_some() {
                "#9e9e9e"
            } else {
                "#fb8c00"
            },
            esc(&f.record.label),
            f.record.injected_at,
            f.record.ended_at
        );
        if let Some(d) = f.detected_at {
            let x = sc.x(d);
            let _ = writeln!(
                o,
                r##"<path d="M{x:.1} {:.1} l5 8 l-5 8 l-5 -8 z" fill="#8e24aa"><title>detected {:.3}s ({})</title></path>"##,
                y + 5.0,
                d,
                esc(f.detected_by.as_deref().unwrap_or(""))
            );
        }
        if let Some(r) = f.recovered_at {
            let x = sc.x(r);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#2e7d32" stroke-width="3"><title>recovered {:.3}s</title></line>"##,
                y + 3.0,
                y + ROW - 3.0,
                r
            );
        }
        y += ROW;
    }
    // Incidents.
    for i in &tl.incidents {
        let label = match &i.playbook {
            Some(p) => format!("incident {} → {p}", i.trigger),
            None => format!("incident {}", i.trigger),
        };
        lane(&mut o, y, &label);
        let (x0, x1) = (sc.x(i.opened), sc.x(i.resolved.unwrap_or(tl.end)));
        let colour = match i.status.as_str() {
            "resolved" => "#7e57c2",
            "open" | "mitigating" => "#ffb300",
            _ => "#c62828",
        };
        let _ = writeln!(
            o,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{} {} ({}) {:.3}s–{}</title></rect>"##,
            y + 6.0,
            (x1 - x0).max(3.0),
            ROW - 12.0,
            esc(&i.id),
            esc(&i.component),
            esc(&i.status),
            i.opened,
            i.resolved
                .map(|r| format!("{r:.3}s"))
                .unwrap_or_else(|| "open".to_owned())
        );
        y += ROW;
    }
    let _ = writeln!(o, "</svg>");
    o
}

fn fmt_tick(t: f64, step: f64) -> String {
    let t = if t.abs() < step / 1000.0 { 0.0 } else { t };
    if step >= 1.0 {
        format!("{t:.0}s")
    } else if step >= 0.1 {
        format!("{t:.1}s")
    } else {
        format!("{t:.2}s")
    }
}
