//! `circuitscope view` in a real browser: the page loads in headless Chromium without console
//! errors, the top-n slider and the |score| threshold change how many edges are drawn, hovering
//! an edge shows its score, clicking a node highlights exactly its edges. The page's own
//! `#selftest` drives the controls with real DOM events and reports what it saw; Chromium's
//! `--dump-dom` gives it back. Without a Chromium the test says SKIPPED (CI installs Debian's).

mod common;

use circuitscope::graph::Circuit;
use common::{cli, skip, Missing, TempDir};
use std::path::Path;
use std::process::Command;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(str::to_string)
}

#[test]
fn the_page_filters_hovers_and_traces_in_headless_chromium() {
    let Some(browser) = chromium() else {
        skip(Missing::Fetch("no Chromium (Debian's package chromium) to load the page in"));
        return;
    };
    let d = TempDir::new();
    let circuit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits/ioi/circuit.json");
    let page = d.join("ioi.html");
    let out = cli(&["view", &circuit_path.display().to_string(), "-o", &page.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") || !html.contains("src=\"http"), "the page loads nothing from a network");
    assert!(!html.contains("<script src"), "one self-contained file");

    let profile = d.join("profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}#selftest", page.display()))
        .output()
        .expect("chromium runs");
    let (dom, log) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error"))).collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
    let report = dom
        .split("<pre id=\"selftest\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| {
            panic!("the page wrote no self-test report; DOM:\n{}\nlog:\n{log}", &dom[..dom.len().min(2000)])
        });
    let r: serde_json::Value =
        serde_json::from_str(&report.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&"))
            .unwrap_or_else(|e| panic!("{e}: {report}"));

    let c = Circuit::read_json(&circuit_path).unwrap();
    let n = c.n_edges_in_graph() as u64;
    assert_eq!(r["edges"], n, "{r}");
    assert!(r["nodes"].as_u64().unwrap() >= c.n_nodes_in_graph() as u64, "{r}");
    assert_eq!(r["top1"], 1, "the slider at 1 draws one edge: {r}");
    assert_eq!(r["all"], n, "{r}");
    let above = r["above_median"].as_u64().unwrap();
    assert!(above >= 1 && above < n, "the threshold hides the weaker edges: {r}");
    assert_eq!(r["hover_edge"], r["strongest"], "hovering the strongest edge shows its name and score: {r}");
    let linked = r["linked"].as_u64().unwrap();
    assert!(linked > 0 && r["linked"] == r["expected_linked"], "clicking {} highlights its edges: {r}", r["clicked"]);
}
