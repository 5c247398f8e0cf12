//! The reference model against Erlang/OTP itself: random cases (strategies, restart
//! types, intensity, significant children and `auto_shutdown`, crashes, normal exits,
//! `terminate_child`, `restart_child`, `delete_child`, `start_child`, failing starts,
//! shutdowns) are run through the model and through OTP's own `supervisor`
//! (`tests/otp_model/otp.escript`), and every call's answer and which children run
//! after every step must agree. Together with `tests/supervisor_model.rs` (the model
//! against Grace's supervisor) this checks Grace against OTP's behaviour, not against
//! a reading of it.
//!
//! Needs `escript` (Debian's `erlang-base`); skipped without it unless
//! `GRACE_REQUIRE_ERLANG=1` (CI sets it). `PROPTEST_CASES=2000` runs more cases.

mod otp_model;

use std::path::PathBuf;
use std::process::Command;

use otp_model::cases::{arb_case, running, Case, Op, IDS};
use otp_model::{Auto, Model, Reply, Restart, Strategy};
use proptest::strategy::{Strategy as _, ValueTree};
use proptest::test_runner::TestRunner;

fn escript() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("escript"))
        .find(|p| p.is_file())
}

fn atom_restart(r: Restart) -> &'static str {
    match r {
        Restart::Permanent => "permanent",
        Restart::Transient => "transient",
        Restart::Temporary => "temporary",
    }
}

fn reply_name(r: Reply) -> &'static str {
    match r {
        Reply::Ok => "ok",
        Reply::NoSuchChild => "no_such_child",
        Reply::AlreadyExists => "already_exists",
        Reply::Running => "running",
        Reply::Restarting => "restarting",
        Reply::StillRunning => "still_running",
        Reply::StartFailed => "start_failed",
        Reply::InvalidSpec => "invalid_spec",
    }
}

fn seen(m: &Model) -> String {
    if m.exit.is_some() {
        return "ended".to_owned();
    }
    let kids: Vec<String> = m
        .children
        .iter()
        .map(|c| format!("{}:{}", c.id, u8::from(c.running)))
        .collect();
    kids.join(",")
}

/// The case as an Erlang term for the escript, and the step lines the model expects.
fn plan(case: &Case) -> (String, Vec<String>) {
    let mut model = Model::new(case.strategy, case.max_restarts, case.auto);
    let mut children = Vec::new();
    for (i, &(r, significant)) in case.children.iter().enumerate() {
        let significant = significant && model.valid(r, true);
        model.start_child(IDS[i], r, significant);
        children.push(format!(
            "{{{}, {}, {significant}}}",
            IDS[i],
            atom_restart(r)
        ));
    }
    let mut expect = vec![format!("step start {}", seen(&model))];
    let mut ops = Vec::new();
    for op in &case.ops {
        if model.exit.is_some() {
            break;
        }
        let (term, reply) = match op {
            Op::Crash(ix) | Op::Exit(ix) => {
                let Some(i) = running(&model, ix) else {
                    continue;
                };
                let crash = matches!(op, Op::Crash(_));
                let term = format!(
                    "{{{}, {}}}",
                    if crash { "crash" } else { "exit" },
                    model.children[i].id
                );
                model.exit_child(i, crash);
                (term, Reply::Ok)
            }
            // Grace's own operation: OTP has none.
            Op::Force(_) => continue,
            Op::Terminate(i) => (
                format!("{{terminate, {}}}", IDS[*i]),
                model.terminate_child(IDS[*i]),
            ),
            Op::RestartChild(i) => (
                format!("{{restart, {}}}", IDS[*i]),
                model.restart_child(IDS[*i]),
            ),
            Op::Delete(i) => (
                format!("{{delete, {}}}", IDS[*i]),
                model.delete_child(IDS[*i]),
            ),
            Op::Start(i, r, s) => (
                format!("{{start, {}, {}, {s}}}", IDS[*i], atom_restart(*r)),
                model.start_child(IDS[*i], *r, *s),
            ),
            Op::FailStarts(i, n) => {
                model.fail_starts(IDS[*i], *n);
                (format!("{{fail, {}, {n}}}", IDS[*i]), Reply::Ok)
            }
            Op::Shutdown => {
                model.shutdown();
                ("shutdown".to_owned(), Reply::Ok)
            }
        };
        ops.push(term);
        expect.push(format!("step {} {}", reply_name(reply), seen(&model)));
    }
    let strategy = match case.strategy {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
    };
    let auto = match case.auto {
        Auto::Never => "never",
        Auto::AnySignificant => "any_significant",
        Auto::AllSignificant => "all_significant",
    };
    let term = format!(
        "{{{strategy}, {}, {auto}, [{}], [{}]}}.",
        case.max_restarts,
        children.join(", "),
        ops.join(", ")
    );
    (term, expect)
}

#[test]
fn the_model_agrees_with_erlang_otp() {
    let Some(escript) = escript() else {
        assert!(
            std::env::var_os("GRACE_REQUIRE_ERLANG").is_none(),
            "escript not found and GRACE_REQUIRE_ERLANG is set; install erlang-base"
        );
        eprintln!("skipped: escript not found (apt-get install erlang-base)");
        return;
    };
    let n: usize = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::deterministic();
    let planned: Vec<(String, Vec<String>)> = (0..n)
        .map(|_| {
            let case = arb_case().new_tree(&mut runner).expect("a case").current();
            plan(&case)
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cases.terms");
    let terms: Vec<&str> = planned.iter().map(|(t, _)| t.as_str()).collect();
    std::fs::write(&file, terms.join("\n")).expect("write cases");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otp_model/otp.escript");
    let out = Command::new(escript)
        .arg(script)
        .arg(&file)
        .output()
        .expect("escript runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "escript failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<Vec<&str>> = text
        .split("case\n")
        .skip(1)
        .map(|r| r.lines().collect())
        .collect();
    for ((term, expect), got) in planned.iter().zip(&runs) {
        for (k, want) in expect.iter().enumerate() {
            let seen = got.get(k).copied().unwrap_or("(nothing)");
            assert_eq!(
                seen, want,
                "case {term}\nstep {k}: OTP printed the left, the model expects the right"
            );
        }
    }
    assert_eq!(
        runs.len(),
        planned.len(),
        "one run per case: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
