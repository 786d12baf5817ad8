//! `vctl profile` refuses a bad duration, and an SVG from a build without the
//! `flamegraph` feature, before it asks the platform; nothing is written.

mod common;

use common::Home;

#[test]
fn bad_durations_are_refused_before_the_platform_is_asked() {
    let home = Home::with_config("");
    // No platform runs: these fail on their arguments, not on the connection.
    let out = home.temp_dir().join("p.folded");
    for seconds in ["0", "601", "100000000"] {
        let e = home.fails(&["profile", "--seconds", seconds, "-o", out.to_str().unwrap()]);
        assert!(
            e.contains(&format!("a whole number of seconds from 1 to 600, not {seconds}")),
            "{seconds}: {e}"
        );
    }
    // Not numbers, or missing: clap's own usage errors.
    let usage = |args: &[&str], wanted: &str| {
        let o = home.vctl(args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(wanted), "{args:?}: {e}");
    };
    for seconds in ["-1", "1.5", "ten"] {
        usage(
            &["profile", "--seconds", seconds, "-o", out.to_str().unwrap()],
            "--seconds",
        );
    }
    usage(&["profile", "-o", out.to_str().unwrap()], "--seconds");
    usage(&["profile", "--seconds", "1"], "--output");
    // Valid arguments: only now is the (missing) platform the problem.
    let e = home.fails(&["profile", "--seconds", "1", "-o", out.to_str().unwrap()]);
    assert!(e.contains("no platform is running"), "{e}");
    assert!(!out.exists());
}

#[cfg(not(feature = "flamegraph"))]
#[test]
fn an_svg_needs_the_flamegraph_feature() {
    let home = Home::with_config("");
    let out = home.temp_dir().join("p.svg");
    let e = home.fails(&["profile", "--seconds", "1", "-o", out.to_str().unwrap()]);
    assert!(
        e.contains("the `flamegraph` feature") && e.contains("CDDL-1.0"),
        "{e}"
    );
    assert!(!out.exists());
}
