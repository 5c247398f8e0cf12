//! Containment with the real `grace watch` and `grace serve`: exec kernels that ignore
//! SIGTERM, double-fork and whose grandchild calls setsid leave nothing after
//! `grace stop --all`, even when serve's shutdown outlasts `[watchdog] stop_timeout`;
//! after `kill -9` of serve, none of the old generation survives the new serve.

mod watchdog_support;

use std::time::{Duration, Instant};

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use watchdog_support::{alive, healthy, poll, signal, Instance, Proc};

const SECS: Duration = Duration::from_secs(15);
/// A watchdog stop timeout shorter than serve's shutdown of the kernels below.
const FAST: &str = r#"check_interval = "100ms"
health_timeout = "500ms"
health_failures = 3
min_uptime = "300ms"
stop_timeout = "1s""#;

/// Three kernels: two ignore SIGTERM (stop_timeout 1 s each, stopped one after the
/// other) and double-fork a sleeper that ignores it too; one has a grandchild that
/// calls setsid; the last stays the parent of its two sleepers. Sleepers `200001` to
/// `200008` are theirs.
fn instance() -> Instance {
    let inst = Instance::new(FAST);
    let s = inst.root().join("sleep").display().to_string();
    let mut text = std::fs::read_to_string(&inst.config).expect("config");
    for (name, a, b) in [("stubborn1", 200001, 200002), ("stubborn2", 200003, 200004)] {
        text.push_str(&format!(
            "\n[[kernel]]\nname = \"{name}\"\nkind = \"exec\"\nshutdown_timeout = \"3s\"\n\
             [kernel.options]\ncommand = \"sh\"\nstop_timeout = \"1s\"\n\
             args = [\"-c\", 'trap \"\" TERM; sh -c \"trap \\\"\\\" TERM; {s} {a} &\"; exec {s} {b}']\n"
        ));
    }
    text.push_str(&format!(
        "\n[[kernel]]\nname = \"setsider\"\nkind = \"exec\"\n[kernel.options]\ncommand = \"sh\"\n\
         stop_timeout = \"1s\"\nargs = [\"-c\", 'sh -c \"setsid {s} 200005 &\"; exec {s} 200006']\n"
    ));
    // A leader that stays the parent of its sleepers: they are orphaned only when it dies.
    text.push_str(&format!(
        "\n[[kernel]]\nname = \"parent\"\nkind = \"exec\"\n[kernel.options]\ncommand = \"sh\"\n\
         stop_timeout = \"1s\"\nargs = [\"-c\", '{s} 200007 & {s} 200008']\n"
    ));
    std::fs::write(&inst.config, text).expect("config");
    inst
}

const MARKERS: [&str; 8] = [
    "200001", "200002", "200003", "200004", "200005", "200006", "200007", "200008",
];

fn sleepers(inst: &Instance) -> Vec<u32> {
    MARKERS.iter().flat_map(|m| inst.sleepers(m)).collect()
}

fn all_running(inst: &Instance) -> bool {
    MARKERS.iter().all(|m| !inst.sleepers(m).is_empty())
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "status {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn stop_all_leaves_nothing_of_term_ignoring_forking_and_setsid_kernels() {
    let inst = instance();
    ok(inst.run(&["start", "--port", "0"]));
    assert!(poll(SECS, || all_running(&inst)), "{:?}", inst.procs());
    let info = ServeInfo::read(&inst.paths)
        .expect("read")
        .expect("serve.json");
    let bound = info.shutdown_timeout().expect("the bound is recorded");
    // Two kernels ignoring SIGTERM for 1 s each, one after the other: the bound covers it.
    assert!(bound >= Duration::from_secs(2), "{bound:?}");
    let status = ok(inst.run(&["status"]));
    assert!(status.contains("containment:"), "{status}");

    let t0 = Instant::now();
    let out = ok(inst.run(&["stop", "--all"]));
    assert!(out.contains("nothing of it is left running"), "{out}");
    let left = sleepers(&inst);
    assert!(left.is_empty(), "left running: {left:?} {:?}", inst.procs());
    assert!(inst.procs().is_empty(), "{:?}", inst.procs());
    assert!(t0.elapsed() < SECS, "{:?}", t0.elapsed());
    // The watchdog waited for serve's own bound (longer than its stop_timeout of 1 s)
    // instead of SIGKILLing it halfway through stopping its kernels.
    let stopped = inst.events_named("serve.stopped");
    let last = stopped.last().expect("serve.stopped logged");
    assert_eq!(last["fields"]["status"], "exit status: 0", "{last}");
}

/// `grace watch` with the containment mechanism `mode` for its serves.
fn watch(inst: &Instance, mode: &str) -> Proc {
    Proc(
        inst.grace(&["watch", "--port", "0"])
            .env(grace::kernel::exec::contain::MODE_ENV, mode)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn grace watch"),
    )
}

fn old_generation_ends_after_kill_9(mode: &str) {
    let inst = instance();
    let _watch = watch(&inst, mode);
    assert!(poll(SECS, || all_running(&inst)), "{:?}", inst.procs());
    let old = ServeInfo::read(&inst.paths)
        .expect("read")
        .expect("serve.json");
    assert!(
        old.containment
            .as_deref()
            .is_some_and(|c| mode == "auto" || c.starts_with(mode)),
        "{:?}",
        old.containment
    );
    let old_sleepers = sleepers(&inst);
    assert_eq!(old_sleepers.len(), MARKERS.len(), "{old_sleepers:?}");

    signal(old.pid, Signal::SIGKILL);
    assert!(
        poll(SECS, || {
            ServeInfo::read(&inst.paths)
                .ok()
                .flatten()
                .is_some_and(|i| i.pid != old.pid && healthy(&i))
        }),
        "a new serve becomes healthy"
    );
    let survivors: Vec<u32> = old_sleepers.iter().copied().filter(|p| alive(*p)).collect();
    assert!(survivors.is_empty(), "old generation left: {survivors:?}");
    // The new generation runs its own.
    assert!(poll(SECS, || all_running(&inst)), "{:?}", inst.procs());
    assert!(sleepers(&inst).iter().all(|p| !old_sleepers.contains(p)));
}

#[test]
fn after_kill_9_of_serve_nothing_of_the_old_generation_survives() {
    old_generation_ends_after_kill_9("auto");
}

#[test]
fn after_kill_9_of_a_subreaper_serve_nothing_of_the_old_generation_survives() {
    old_generation_ends_after_kill_9("subreaper");
}
