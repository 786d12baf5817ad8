//! The exposition in Prometheus's classic text format (version 0.0.4), for scrapers that do
//! not ask for OpenMetrics (`promtool check metrics`, older Prometheus, most exporters'
//! tooling). prometheus-client writes only OpenMetrics; the two differ in a few lines:
//!
//! | OpenMetrics | text 0.0.4 |
//! |-------------|------------|
//! | `# HELP`/`# TYPE x counter`, samples `x_total` | `# HELP`/`# TYPE x_total counter` |
//! | `# TYPE x info`, samples `x_info` | `# TYPE x_info gauge` |
//! | `# TYPE x stateset` / `gaugehistogram` / `unknown` | `# TYPE x untyped` |
//! | `# UNIT x seconds` | (dropped: the unit is in the name) |
//! | a sample's exemplar, ` # {trace_id="..."} 1.0` | (dropped) |
//! | `# EOF` | (dropped) |

/// The content type of [`to_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `openmetrics` (as prometheus-client encodes it) in the classic text format.
pub fn to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<String> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // Held until the TYPE line says whether the name changes.
            pending_help = Some(rest.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (new_name, new_kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some(help) = pending_help.take() {
                let text = help.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {new_name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {new_name} {new_kind}\n"));
            continue;
        }
        if let Some(help) = pending_help.take() {
            // A HELP without a TYPE: kept as it was.
            out.push_str(&format!("# HELP {help}\n"));
        }
        // A sample: drop its exemplar.
        let sample = match line.find(" # {") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

/// Whether an `Accept` header asks for OpenMetrics.
pub fn accepts_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim();
            let q_zero = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_infos_take_their_sample_names_and_openmetrics_only_lines_go() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3 # {trace_id=\"ab\"} 1.0\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{v=\"1\"} 1\n\
                  # HELP a_temp Temperature.\n# TYPE a_temp gauge\n# UNIT a_temp celsius\na_temp 21.5\n\
                  # TYPE a_set stateset\na_set{a_set=\"on\"} 1\n# EOF\n";
        let text = to_text(om);
        assert_eq!(
            text,
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{v=\"1\"} 1\n\
             # HELP a_temp Temperature.\n# TYPE a_temp gauge\na_temp 21.5\n\
             # TYPE a_set untyped\na_set{a_set=\"on\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_only_when_asked_for_and_not_refused() {
        assert!(accepts_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!accepts_openmetrics(Some("text/plain")));
        assert!(!accepts_openmetrics(Some("application/openmetrics-text; q=0")));
        assert!(!accepts_openmetrics(None));
    }
}
