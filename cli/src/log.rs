//! Where the engine's diagnostics go: `tracing` events on stderr, each line
//! `vigil: <message>` as the CLI's own messages are.
//!
//! By default warnings from every crate and vigil's notices (`info`: the
//! engine's and the command's own) are shown. `VIGIL_STAGE_TIMES=1` adds the pipeline's stage times (target
//! `vigil::stages`), `VIGIL_HYBRID_TRACE=1` each hybrid batch's split
//! (target `vigil::hybrid`); `RUST_LOG` (`target=level,…`, or a bare level)
//! adds its own directives after those.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// `vigil: message key=value …`, with no time, level or target: a notice
/// reads as it did when the engine printed it.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(w, "vigil: ")?;
        if !event.metadata().target().starts_with("vigil") {
            // Not vigil's own notice: say how serious it is.
            write!(w, "{}: ", event.metadata().level().as_str().to_lowercase())?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(w, "{}: ", fields)?;
                }
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// The filter: defaults, the two switches, then `RUST_LOG`.
fn filter() -> Targets {
    let on = |k: &str| std::env::var(k).is_ok_and(|v| v == "1");
    let mut t = Targets::new()
        .with_default(Level::WARN)
        .with_target("vigil_engine", Level::INFO)
        .with_target("vigil", Level::INFO);
    if on("VIGIL_STAGE_TIMES") {
        t = t.with_target("vigil::stages", Level::DEBUG);
    }
    if on("VIGIL_HYBRID_TRACE") {
        t = t.with_target("vigil::hybrid", Level::DEBUG);
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        match spec.parse::<Targets>() {
            Ok(extra) => {
                for (target, level) in extra.iter() {
                    t = t.with_target(target, level);
                }
                if let Some(level) = extra.default_level() {
                    t = t.with_default(level);
                }
            }
            Err(e) => eprintln!("vigil: RUST_LOG={spec:?} ignored: {e}"),
        }
    }
    t
}

/// How diagnostics are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `vigil: message`, one a line.
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, target, fields (message).
    Json,
}

/// Installs the stderr subscriber (once, at start).
pub fn init(format: LogFormat) {
    let registry = tracing_subscriber::registry().with(filter());
    let _ = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).event_format(Plain))
            .try_init(),
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
        }
    };
}
