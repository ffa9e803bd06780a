//! The only user of ariadne: renders diagnostics as a plain `FILE:LINE:COL: error[CODE]: message`
//! line followed by a source snippet with labels and notes.

use ariadne::{Config, IndexType, Label, Report, ReportKind};

use crate::base::diag::Severity;
use crate::base::{Diagnostic, SourceMap};

/// How to render: colour only when writing to a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderConfig {
    pub color: bool,
}

/// Renders one diagnostic to text.
pub fn render(sm: &SourceMap, d: &Diagnostic, cfg: RenderConfig) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let primary = d.primary_span();
    let mut out = format!(
        "{}: {kind}[{}]: {}\n",
        sm.location(primary),
        d.code,
        d.message
    );
    let file_name = |id| sm.name(id).to_string();
    let report_kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let mut b = Report::build(report_kind, (file_name(primary.file), primary.range()))
        .with_code(d.code)
        .with_message(&d.message)
        .with_config(
            Config::default()
                .with_color(cfg.color)
                .with_index_type(IndexType::Byte),
        );
    for l in &d.labels {
        let mut label = Label::new((file_name(l.span.file), clamp(sm, l.span)));
        if !l.message.is_empty() {
            label = label.with_message(&l.message);
        } else if l.primary {
            label = label.with_message("here");
        }
        // ariadne starts a new snippet, headed with the primary location, at a label above
        // the previous one: keep the labels of a file in line order (the primary first on
        // its line, the primary's file first) so that each snippet's header is right.
        let range = clamp(sm, l.span);
        let (line, _) = sm.line_col(l.span.file, range.end.saturating_sub(1).max(range.start));
        let other_file = i32::from(l.span.file != primary.file) << 30;
        let line = i32::try_from(line).unwrap_or(1 << 28).min(1 << 28);
        label = label.with_order(other_file + 2 * line + i32::from(!l.primary));
        b = b.with_label(label);
    }
    for n in &d.notes {
        b = b.with_note(n);
    }
    let cache = ariadne::sources(
        sm.files()
            .map(|(_, f)| (f.name.clone(), f.text.clone()))
            .collect::<Vec<_>>(),
    );
    let mut buf = Vec::new();
    if b.finish().write(cache, &mut buf).is_ok() {
        out.push_str(&String::from_utf8_lossy(&buf));
    }
    out
}

/// Renders every diagnostic, in order.
pub fn render_all(sm: &SourceMap, diags: &[Diagnostic], cfg: RenderConfig) -> String {
    diags.iter().map(|d| render(sm, d, cfg)).collect()
}

fn clamp(sm: &SourceMap, span: crate::base::Span) -> std::ops::Range<usize> {
    let len = sm.text(span.file).len();
    let lo = (span.lo as usize).min(len);
    lo..(span.hi as usize).clamp(lo, len)
}
