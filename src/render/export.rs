//! Every picture as SVG, PDF or PNG, chosen by the output file's extension, with no external
//! program: the SVG is parsed once (usvg, with the system's fonts), then written as it is, as a
//! PDF whose text stays text with its fonts embedded (svg2pdf), or as a PNG at twice its size
//! (resvg). The same picture gives the same SVG and PNG bytes, and a PDF of the same size and
//! content (svg2pdf lists a page's resources in hash-map order, which varies between runs).

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use svg2pdf::usvg;

/// A picture's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PictureFormat {
    Svg,
    Pdf,
    Png,
}

/// Pixels per SVG unit in a PNG (SVG units are CSS px: 2 gives a sharp picture on paper and screen).
pub const PNG_SCALE: f32 = 2.0;

impl PictureFormat {
    /// The format a path's extension asks for; an error naming the path otherwise.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        Self::from_name(ext)
            .map_err(|_| Error::input(format!("{}: a picture is written as .svg, .pdf or .png", path.display())))
    }

    /// `svg`, `pdf` or `png` (any case).
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "svg" => Ok(PictureFormat::Svg),
            "pdf" => Ok(PictureFormat::Pdf),
            "png" => Ok(PictureFormat::Png),
            _ => Err(Error::input(format!("picture format `{name}`: give svg, pdf or png"))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            PictureFormat::Svg => "svg",
            PictureFormat::Pdf => "pdf",
            PictureFormat::Png => "png",
        }
    }
}

/// The system's fonts, read once; the generic families point at fonts it has.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        let families: Vec<String> = db.faces().flat_map(|f| f.families.iter().map(|(name, _)| name.clone())).collect();
        // the drawings ask for Helvetica, Arial, sans-serif: the first of these the system has
        for sans in ["Helvetica", "Arial", "Liberation Sans", "DejaVu Sans", "Noto Sans", "FreeSans"] {
            if families.iter().any(|f| f == sans) {
                db.set_sans_serif_family(sans);
                break;
            }
        }
        Arc::new(db)
    })
    .clone()
}

/// The face for a character the text's font lacks (Liberation Sans has no `∝`): a sans-serif
/// face of the font's style, weight and width where the system has one with it, so a picture
/// keeps one look; else usvg's choice, the first face with it (on Debian, a serif one).
fn sans_fallback() -> usvg::FallbackSelectionFn<'static> {
    let default = usvg::FontResolver::default_fallback_selector();
    Box::new(move |c, exclude, db| {
        let base = db.face(*exclude.first()?)?;
        let like_base = |f: &usvg::fontdb::FaceInfo| {
            f.families.iter().any(|(name, _)| name.contains("Sans") && !name.contains("Mono"))
                && (f.style, f.weight, f.stretch) == (base.style, base.weight, base.stretch)
        };
        // usvg's choice among those faces alone: every other face is ruled out
        let mut others = exclude.to_vec();
        others.extend(db.faces().filter(|f| !like_base(f)).map(|f| f.id));
        default(c, &others, db).or_else(|| default(c, exclude, db))
    })
}

/// The SVG parsed, with an error if its text needs fonts the system lacks.
fn tree(svg: &str, path: &Path) -> Result<usvg::Tree> {
    let fontdb = fonts();
    if fontdb.is_empty() && svg.contains("<text") {
        return Err(Error::input(format!(
            "{}: no fonts found for the picture's text; install a TrueType font (e.g. Debian's fonts-dejavu-core) \
             or write .svg",
            path.display()
        )));
    }
    let font_resolver = usvg::FontResolver { select_fallback: sans_fallback(), ..Default::default() };
    let opts = usvg::Options { fontdb, font_resolver, ..Default::default() };
    usvg::Tree::from_str(svg, &opts).map_err(|e| Error::format(path, format!("the picture's SVG does not parse: {e}")))
}

/// The picture `svg` in `format`.
pub fn picture_bytes(svg: &str, format: PictureFormat, path: &Path) -> Result<Vec<u8>> {
    match format {
        PictureFormat::Svg => Ok(svg.as_bytes().to_vec()),
        PictureFormat::Pdf => {
            let t = tree(svg, path)?;
            svg2pdf::to_pdf(&t, svg2pdf::ConversionOptions::default(), svg2pdf::PageOptions::default())
                .map_err(|e| Error::format(path, format!("cannot convert the picture to PDF: {e}")))
        }
        PictureFormat::Png => {
            let t = tree(svg, path)?;
            let size = t.size();
            let (w, h) = ((size.width() * PNG_SCALE).ceil() as u32, (size.height() * PNG_SCALE).ceil() as u32);
            let mut pixmap = resvg::tiny_skia::Pixmap::new(w.max(1), h.max(1))
                .ok_or_else(|| Error::format(path, format!("a {w} × {h} PNG is too large")))?;
            pixmap.fill(resvg::tiny_skia::Color::WHITE);
            resvg::render(&t, resvg::tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE), &mut pixmap.as_mut());
            pixmap.encode_png().map_err(|e| Error::format(path, format!("cannot encode the PNG: {e}")))
        }
    }
}

/// Writes the picture `svg` to `path` as its extension asks (.svg, .pdf, .png), atomically.
pub fn write_picture(path: &Path, svg: &str) -> Result<()> {
    let bytes = picture_bytes(svg, PictureFormat::of(path)?, path)?;
    write_atomic(path, &bytes)
}
