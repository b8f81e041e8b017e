//! Where the engine's diagnostics go: `tracing` events on stderr, each line
//! `vigil: <message>` as the CLI's own messages are.
//!
//! By default warnings from every crate and the engine's notices (`info`)
//! are shown. `VIGIL_STAGE_TIMES=1` adds the pipeline's stage times (target
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
    let mut t = Targets::new().with_default(Level::WARN).with_target("vigil_engine", Level::INFO);
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

/// Installs the stderr subscriber (once, at start).
pub fn init() {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).event_format(Plain);
    let _ = tracing_subscriber::registry().with(layer).with(filter()).try_init();
}
