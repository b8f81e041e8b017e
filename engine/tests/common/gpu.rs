//! What a GPU test does without an adapter: say so and pass, unless
//! `VIGIL_REQUIRE_GPU=1` (CI, on lavapipe), where it fails.

use std::fmt::Display;

/// The opened device, or `None` after a loud skip notice.
pub fn or_skip<T, E: Display>(opened: Result<T, E>) -> Option<T> {
    match opened {
        Ok(device) => Some(device),
        Err(e) if std::env::var("VIGIL_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("VIGIL_REQUIRE_GPU=1 but {e}"),
        Err(e) => {
            eprintln!("SKIPPING GPU test: {e}");
            None
        }
    }
}
