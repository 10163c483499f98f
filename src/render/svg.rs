//! Small pieces shared by the SVG writers: XML escaping, fixed number formatting (so output
//! is byte-for-byte deterministic), text-width estimates for layout, and checkers used by the
//! tests (tag balance, text bounding boxes).

/// The font stack of every drawing; widths below are estimated for Helvetica/Arial.
pub const FONT_FAMILY: &str = "Helvetica, Arial, sans-serif";

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => {} // not allowed in XML 1.0
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with two decimals, `-0.00` normalised to `0.00`.
pub fn f2(x: f64) -> String {
    let s = format!("{x:.2}");
    if s == "-0.00" {
        "0.00".into()
    } else {
        s
    }
}

/// A number for a label: 3 significant digits, scientific outside [1e-3, 1e5).
pub fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    // Trim trailing zeros of a fractional part: 0.500 → 0.5, 2.00 → 2.
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// An upper estimate of a text's width in Helvetica/Arial at `font_size` px (per-character
/// advance widths rounded up), so boxes sized from it always contain the text.
pub fn text_width(s: &str, font_size: f64, bold: bool) -> f64 {
    let em: f64 = s
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 0.3,
            'f' | 't' | 'r' | 'I' | '(' | ')' | '[' | ']' | '-' => 0.4,
            'm' | 'w' | 'M' | 'W' | '@' | '%' | '×' | '—' => 0.95,
            'A'..='Z' | '<' | '>' | '=' | '+' | '→' | '∝' | '≥' => 0.72,
            _ => 0.6,
        })
        .sum();
    em * font_size * if bold { 1.1 } else { 1.0 }
}

/// An axis-aligned rectangle (x0, y0) – (x1, y1), y down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    /// Whether two rectangles overlap with positive area (touching edges do not count).
    pub fn intersects(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// The bounding box of a text drawn at baseline `y` with the given anchor.
pub fn text_box(text: &str, x: f64, y: f64, font_size: f64, anchor: &str, bold: bool) -> Rect {
    let w = text_width(text, font_size, bold);
    let x0 = match anchor {
        "middle" => x - w / 2.0,
        "end" => x - w,
        _ => x,
    };
    Rect { x0, y0: y - 0.8 * font_size, x1: x0 + w, y1: y + 0.25 * font_size }
}

/// A `<text>` element, with its content escaped.
pub fn text(x: f64, y: f64, font_size: f64, anchor: &str, attrs: &str, content: &str) -> String {
    format!(
        "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\"{}{attrs}>{}</text>",
        f2(x),
        f2(y),
        f2(font_size),
        if attrs.is_empty() { "" } else { " " },
        escape(content)
    )
}

/// Checks that markup is well-formed enough for any SVG viewer: tags balanced and properly
/// nested, attribute values quoted, `&` only in the five XML entities or numeric references,
/// no stray `<` or `>` in text. Returns the first problem found.
pub fn check_well_formed(xml: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    let mut offset = 0usize;
    let check_text = |t: &str, at: usize| -> Result<(), String> {
        if t.contains('>') {
            return Err(format!("stray `>` in text at byte {at}"));
        }
        let mut s = t;
        while let Some(i) = s.find('&') {
            let tail = &s[i + 1..];
            let end = tail.find(';').ok_or_else(|| format!("unterminated entity at byte {at}"))?;
            let name = &tail[..end];
            let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                || (name.starts_with('#') && name.len() > 1 && name[1..].chars().all(|c| c.is_ascii_alphanumeric()));
            if !ok {
                return Err(format!("bad entity `&{name};` at byte {at}"));
            }
            s = &tail[end + 1..];
        }
        Ok(())
    };
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt], offset)?;
        let tag_start = offset + lt;
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or_else(|| format!("unterminated comment at byte {tag_start}"))?;
            offset += 4 + end + 3;
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or_else(|| format!("unterminated declaration at byte {tag_start}"))?;
            offset += 2 + end + 2;
            rest = &r[end + 2..];
            continue;
        }
        // A tag runs to the first `>` outside quotes.
        let mut in_quote = None;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (in_quote, c) {
                (None, '"' | '\'') => in_quote = Some(c),
                (Some(q), c) if c == q => in_quote = None,
                (None, '<') => return Err(format!("`<` inside a tag at byte {}", tag_start + i)),
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("unterminated tag at byte {tag_start}"))?;
        let inner = &rest[1..end];
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => return Err(format!("`</{name}>` closes `<{open}>` at byte {tag_start}")),
                None => return Err(format!("`</{name}>` with nothing open at byte {tag_start}")),
            }
        } else {
            let self_closing = inner.ends_with('/');
            let body = inner.trim_end_matches('/');
            let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_')) {
                return Err(format!("bad tag name `{name}` at byte {tag_start}"));
            }
            check_attributes(&body[name.len()..]).map_err(|e| format!("<{name}> at byte {tag_start}: {e}"))?;
            if !self_closing {
                stack.push(name);
            }
        }
        offset += end + 1;
        rest = &rest[end + 1..];
    }
    check_text(rest, offset)?;
    match stack.pop() {
        Some(open) => Err(format!("`<{open}>` is never closed")),
        None => Ok(()),
    }
}

/// `name="value"` pairs separated by whitespace, values double- or single-quoted, no
/// attribute twice.
fn check_attributes(mut s: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s.find('=').ok_or_else(|| format!("attribute without a value near `{s}`"))?;
        let name = s[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name near `{s}`"));
        }
        if seen.contains(&name) {
            return Err(format!("attribute `{name}` given twice"));
        }
        seen.push(name);
        let v = s[eq + 1..].trim_start();
        let q =
            v.chars().next().filter(|c| *c == '"' || *c == '\'').ok_or_else(|| format!("`{name}` is not quoted"))?;
        let close = v[1..].find(q).ok_or_else(|| format!("`{name}` has no closing quote"))?;
        if v[1..1 + close].contains('<') {
            return Err(format!("`<` in the value of `{name}`"));
        }
        s = &v[close + 2..];
    }
}

/// A `<text>` element found in SVG markup, with its estimated bounding box.
#[derive(Clone, Debug, PartialEq)]
pub struct TextItem {
    pub content: String,
    pub bbox: Rect,
}

/// Every `<text>` element of markup written by these writers or by plotters (attributes `x`,
/// `y`, `font-size`, `text-anchor`, optional `font-weight="bold"`, plotters' `dy` of `0.76em`,
/// `0.5ex` or `-0.5ex` for a top, middle or bottom anchor, and a quarter turn anticlockwise
/// about the anchor point, `rotate(-90 x y)` or `rotate(270, x, y)`), with its bounding box
/// from [`text_box`]; for tests that labels do not overlap.
pub fn text_items(svg: &str) -> Vec<TextItem> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        let i = tag.find(&key)? + key.len();
        Some(tag[i..i + tag[i..].find('"')?].to_string())
    };
    let mut items = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<text ") {
        rest = &rest[i..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        let Some(close) = rest.find("</text>") else { break };
        // plotters writes its text between two newlines
        let content = rest[gt + 1..close].trim().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
        let num = |n: &str| attr(tag, n).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let anchor = attr(tag, "text-anchor").unwrap_or_else(|| "start".into());
        let bold = attr(tag, "font-weight").is_some_and(|w| w == "bold");
        let (x, y, size) = (num("x"), num("y"), num("font-size"));
        // the baseline: plotters anchors text at its top or middle by a shift
        let dy = match attr(tag, "dy").as_deref() {
            Some("0.76em") => 0.76 * size,
            Some("0.5ex") => 0.25 * size,
            Some("-0.5ex") => -0.25 * size,
            _ => 0.0,
        };
        let mut bbox = text_box(&content, x, y + dy, size, &anchor, bold);
        if attr(tag, "transform").is_some_and(|t| t.starts_with("rotate(-90") || t.starts_with("rotate(270,")) {
            // Rotated a quarter turn anticlockwise about (x, y): (px, py) → (x + py − y, y − (px − x)).
            bbox = Rect { x0: x + bbox.y0 - y, x1: x + bbox.y1 - y, y0: y - (bbox.x1 - x), y1: y - (bbox.x0 - x) };
        }
        items.push(TextItem { content, bbox });
        rest = &rest[close..];
    }
    items
}

/// The first pair of texts whose boxes overlap, if any.
pub fn overlapping_texts(items: &[TextItem]) -> Option<(TextItem, TextItem)> {
    // Sweep on x0 so 30-layer drawings (hundreds of labels) stay cheap.
    let mut sorted: Vec<&TextItem> = items.iter().collect();
    sorted.sort_by(|a, b| a.bbox.x0.total_cmp(&b.bbox.x0));
    for (i, a) in sorted.iter().enumerate() {
        for b in &sorted[i + 1..] {
            if b.bbox.x0 >= a.bbox.x1 {
                break;
            }
            if a.bbox.intersects(&b.bbox) {
                return Some(((*a).clone(), (*b).clone()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&apos;");
        assert_eq!(f2(-0.001), "0.00");
        assert_eq!(f2(1.005), "1.00");
        assert_eq!(sig3(0.5), "0.5");
        assert_eq!(sig3(123.456), "123");
        assert_eq!(sig3(0.012345), "0.0123");
        assert_eq!(sig3(2.0), "2");
        assert_eq!(sig3(1.5e-5), "1.50e-5");
    }

    #[test]
    fn checker_accepts_good_and_rejects_bad_markup() {
        let good =
            "<?xml version=\"1.0\"?><svg a=\"1\"><!-- c --><g><text x=\"1\">a &amp; b</text><path d=\"M\"/></g></svg>";
        assert_eq!(check_well_formed(good), Ok(()));
        for bad in [
            "<svg><g></svg>",
            "<svg>",
            "</g>",
            "<svg a=1></svg>",
            "<svg>a & b</svg>",
            "<svg a=\"1\" a=\"2\"></svg>",
            "<svg><text>x</g></svg>",
            "<svg>a > b</svg>",
        ] {
            assert!(check_well_formed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_items_parse_back_with_boxes() {
        let svg = format!(
            "<svg>{}{}</svg>",
            text(10.0, 20.0, 10.0, "start", "", "a<b"),
            text(10.0, 20.0, 10.0, "end", "", "x")
        );
        let items = text_items(&svg);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].content, "a<b");
        assert!(items[0].bbox.x0 == 10.0 && items[1].bbox.x1 == 10.0);
        assert!(overlapping_texts(&items).is_none());
        let svg2 = format!(
            "<svg>{}{}</svg>",
            text(10.0, 20.0, 10.0, "start", "", "abc"),
            text(12.0, 22.0, 10.0, "start", "", "x")
        );
        assert!(overlapping_texts(&text_items(&svg2)).is_some());
    }
}
