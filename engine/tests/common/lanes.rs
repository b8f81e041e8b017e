//! The signature lane implementations a test can run here. One this CPU
//! cannot run is skipped with a loud SKIPPING line, unless
//! `VIGIL_REQUIRE_LANES` names it (a comma-separated list, or `all`): then
//! the test fails. CI sets it to what its CPU has.

use vigil_engine::sig::lanes::Lanes;

/// Every lane implementation this CPU runs, the portable one included.
pub fn runnable(test: &str) -> Vec<Lanes> {
    let required = std::env::var("VIGIL_REQUIRE_LANES").unwrap_or_default();
    let required: Vec<&str> = required.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    Lanes::ALL
        .into_iter()
        .filter(|lanes| {
            if lanes.supported() {
                return true;
            }
            let name = lanes.name();
            if required.iter().any(|r| *r == name || *r == "all") {
                panic!("{test}: VIGIL_REQUIRE_LANES names {name}, but this CPU cannot run the {name} lanes");
            }
            eprintln!(
                "SKIPPING {name} lanes in {test}: this CPU cannot run them (VIGIL_REQUIRE_LANES={name} makes this fail)"
            );
            false
        })
        .collect()
}
