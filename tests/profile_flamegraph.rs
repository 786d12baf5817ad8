//! With the `flamegraph` feature, `vctl profile -o FILE.svg` writes an SVG flame graph
//! (valid XML, read by Python's XML parser) naming the profiled agent's busy function.
//! CI runs it with `cargo test --features flamegraph --test profile_flamegraph`
//! (`.ci/run`); without the feature, tests/profile_bad_args.rs checks the refusal.
#![cfg(feature = "flamegraph")]

mod common;

use common::Home;

#[test]
fn an_svg_flame_graph_of_an_agent_process() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    home.install_started(&common::example_binary("profiled_agent"), "busy");
    let out = home.temp_dir().join("busy.svg");
    home.ok(&[
        "profile",
        "--agent",
        "busy",
        "--seconds",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("CPU profile of busy"),
        "{}",
        &svg[..svg.len().min(500)]
    );
    assert!(
        svg.contains("profiled_agent::spin_checksum"),
        "the busy function is not in the SVG"
    );
    // Well-formed XML whose root is an SVG element.
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().tag)",
        ])
        .arg(&out)
        .output()
        .expect("python3 (CI has it: .ci/test)");
    assert!(
        parsed.status.success(),
        "not XML: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        "{http://www.w3.org/2000/svg}svg"
    );
    home.ok(&["shutdown", "--platform"]);
    common::platform_wait(platform);
}
