//! An attention pattern as an SVG heatmap: query positions down, key positions across, one
//! labelled cell per (query, key), darker = more attention.

use super::svg::escape as xml_escape;
use std::fmt::Write;

/// `pattern[i][j]` = attention from query i to key j (rows sum to 1), `tokens` the labels.
pub fn attention_svg(title: &str, tokens: &[String], pattern: &[Vec<f32>]) -> String {
    let n = tokens.len();
    let cell = 22.0;
    let label_w = 7.0 * tokens.iter().map(|t| t.chars().count()).max().unwrap_or(1).min(18) as f64 + 12.0;
    let (x0, y0) = (label_w + 10.0, label_w + 40.0);
    let (w, h) = (x0 + cell * n as f64 + 90.0, y0 + cell * n as f64 + 20.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        writeln!(s, r#"<text x="{:.1}" y="20" font-size="14" font-weight="bold">{}</text>"#, 10.0, xml_escape(title));
    let short = |t: &str| {
        let t: String = t.chars().take(18).collect();
        xml_escape(&t.replace(' ', "␣").replace('\n', "⏎"))
    };
    for (i, t) in tokens.iter().enumerate() {
        let c = i as f64 * cell + cell / 2.0;
        // query labels on the left, key labels rotated above
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            x0 - 6.0,
            y0 + c,
            short(t)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate({:.1},{:.1}) rotate(-60)" dominant-baseline="middle">{}</text>"#,
            x0 + c,
            y0 - 6.0,
            short(t)
        );
    }
    for (i, row) in pattern.iter().enumerate().take(n) {
        for (j, &a) in row.iter().enumerate().take(n) {
            if j > i {
                continue;
            }
            let a = a.clamp(0.0, 1.0);
            // white → dark blue
            let (r, g, b) = (255.0 - 247.0 * a, 255.0 - 207.0 * a, 255.0 - 148.0 * a);
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{cell}" height="{cell}" fill="rgb({:.0},{:.0},{:.0})" stroke="#eeeeee" stroke-width="0.5"><title>{} → {}: {:.3}</title></rect>"##,
                x0 + j as f64 * cell,
                y0 + i as f64 * cell,
                r,
                g,
                b,
                short(&tokens[i]),
                short(&tokens[j]),
                a
            );
        }
    }
    // colour bar
    let bx = x0 + cell * n as f64 + 25.0;
    for k in 0..=10 {
        let a = k as f64 / 10.0;
        let (r, g, b) = (255.0 - 247.0 * a, 255.0 - 207.0 * a, 255.0 - 148.0 * a);
        let _ = writeln!(
            s,
            r##"<rect x="{bx:.1}" y="{:.1}" width="14" height="12" fill="rgb({r:.0},{g:.0},{b:.0})" stroke="#999999" stroke-width="0.3"/>"##,
            y0 + (10 - k) as f64 * 12.0
        );
    }
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">1.0</text>"#, bx + 18.0, y0 + 9.0);
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">0.0</text>"#, bx + 18.0, y0 + 129.0);
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" font-style="italic">query ↓ key →</text>"#, 10.0, 38.0);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_cell_per_visible_pair_and_escapes_labels() {
        let toks = vec!["<a>".to_string(), " b".into(), " c".into()];
        let pat = vec![vec![1.0, 0.0, 0.0], vec![0.5, 0.5, 0.0], vec![0.2, 0.3, 0.5]];
        let svg = attention_svg("L0 H1 & friends", &toks, &pat);
        assert_eq!(svg.matches("<rect x=").count(), 6 + 11);
        assert!(svg.contains("&lt;a&gt;") && svg.contains("L0 H1 &amp; friends"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
