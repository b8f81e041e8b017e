//! Realistic IoT records for transaction payloads.
//!
//! Each device has a primary record type (from its public key) and now and
//! then logs a text line instead. A record starts with a small header naming
//! the device, then repeats readings — random walks around device-specific
//! baselines with a day/night cycle — until it reaches the target length,
//! where it is cut. Everything is integer arithmetic, so the bytes are the
//! same on every platform.

use crate::rng::Rng;
use std::io::Write;

/// Temperature and relative humidity, text.
pub const KIND_ENV: u16 = 1;
/// GPS fixes, binary.
pub const KIND_GPS: u16 = 2;
/// Accelerometer burst, binary.
pub const KIND_ACCEL: u16 = 3;
/// Power / battery meter, text.
pub const KIND_POWER: u16 = 4;
/// Event log lines, text.
pub const KIND_LOG: u16 = 5;

const DAY_MS: u64 = 86_400_000;

/// The record type a device sends most of the time.
pub fn primary_kind(device_key: &[u8; 32]) -> u16 {
    1 + u16::from(device_key[4] % 4)
}

/// Picks the kind of one record and writes exactly `len` bytes of it to `out`
/// (cleared first). Returns the kind.
pub(crate) fn fill(out: &mut Vec<u8>, device_key: &[u8; 32], ts: u64, len: usize, rng: &mut Rng) -> u16 {
    let kind = if rng.chance(1, 10) { KIND_LOG } else { primary_kind(device_key) };
    out.clear();
    let d = Device::new(device_key);
    match kind {
        KIND_ENV => env(out, &d, ts, len, rng),
        KIND_GPS => gps(out, &d, len, rng),
        KIND_ACCEL => accel(out, &d, len, rng),
        KIND_POWER => power(out, &d, ts, len, rng),
        _ => log(out, &d, ts, len, rng),
    }
    out.truncate(len);
    debug_assert_eq!(out.len(), len);
    kind
}

struct Device<'a> {
    serial: u32,
    key: &'a [u8; 32],
}

impl<'a> Device<'a> {
    fn new(key: &'a [u8; 32]) -> Self {
        Device { serial: u32::from_le_bytes([key[0], key[1], key[2], key[3]]), key }
    }
    fn byte(&self, i: usize) -> i64 {
        i64::from(self.key[i])
    }
}

/// Day/night cycle in ‰: +1000 at 15:00 UTC, −1000 at 03:00.
fn diurnal(ts: u64) -> i64 {
    let x = (ts % DAY_MS + DAY_MS - 15 * 3_600_000) % DAY_MS;
    let d = x.min(DAY_MS - x) as i64; // 0 at the peak, DAY/2 at the trough
    1000 - d * 2000 / (DAY_MS as i64 / 2)
}

/// Writes `v / 10^decimals` with exactly `decimals` digits after the point.
fn fixed(out: &mut Vec<u8>, v: i64, decimals: u32) {
    let scale = 10i64.pow(decimals);
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let s = scale as u64;
    let _ = write!(out, "{sign}{}.{:0w$}", a / s, a % s, w = decimals as usize);
}

fn walk(v: &mut i64, step: i64, lo: i64, hi: i64, rng: &mut Rng) {
    *v = (*v + rng.irange(-step, step)).clamp(lo, hi);
}

fn env(out: &mut Vec<u8>, d: &Device, ts: u64, len: usize, rng: &mut Rng) {
    let _ = writeln!(out, "env/1 id={:08x} u=C,%RH dt=60s", d.serial);
    let cycle = diurnal(ts);
    // Centi-degrees: a baseline of 5..30 °C, ±4 °C over the day.
    let mut t = 500 + d.byte(5) * 10 + cycle * 4 / 10 + rng.irange(-50, 50);
    // Deci-percent, drier when warmer.
    let mut h = (300 + d.byte(6) * 2 - cycle / 10).clamp(50, 1000);
    while out.len() < len {
        walk(&mut t, 12, -4000, 6000, rng);
        walk(&mut h, 5, 50, 1000, rng);
        fixed(out, t, 2);
        out.push(b' ');
        fixed(out, h, 1);
        out.push(b'\n');
    }
}

const CITIES: [(i64, i64); 8] = [
    (525_200_000, 134_050_000),    // Berlin
    (65_244_000, 33_792_000),      // Lagos
    (-235_505_000, -466_333_000),  // São Paulo
    (356_762_000, 1_396_503_000),  // Tokyo
    (476_062_000, -1_223_321_000), // Seattle
    (-338_688_000, 1_512_093_000), // Sydney
    (190_760_000, 728_777_000),    // Mumbai
    (600_000_000, 251_000_000),    // Helsinki
];

fn gps(out: &mut Vec<u8>, d: &Device, len: usize, rng: &mut Rng) {
    out.extend_from_slice(b"GPS1");
    out.extend_from_slice(&d.serial.to_le_bytes());
    let interval: u16 = [1, 5, 10, 30][d.key[7] as usize % 4];
    out.extend_from_slice(&interval.to_le_bytes());
    let (clat, clon) = CITIES[d.key[8] as usize % CITIES.len()];
    // Units of 1e-7 degree; start within ~5 km of the city centre.
    let mut lat = clat + rng.irange(-450_000, 450_000);
    let mut lon = clon + rng.irange(-450_000, 450_000);
    let mut alt_dm = d.byte(9) * 20 + rng.irange(-20, 20);
    let (mut vlat, mut vlon) = (rng.irange(-1500, 1500), rng.irange(-1500, 1500));
    let mut sats = rng.irange(5, 14);
    let mut dt: u16 = 0;
    while out.len() < len {
        walk(&mut vlat, 150, -3000, 3000, rng);
        walk(&mut vlon, 150, -3000, 3000, rng);
        lat = (lat + vlat * i64::from(interval)).clamp(-900_000_000, 900_000_000);
        lon = (lon + vlon * i64::from(interval)).clamp(-1_800_000_000, 1_800_000_000);
        walk(&mut alt_dm, 3, -4000, 32000, rng);
        walk(&mut sats, 1, 3, 20, rng);
        // ~1.1 cm per 1e-7 degree of latitude.
        let speed_cms = ((vlat.abs() + vlon.abs()) * 11 / 10) as u16;
        let hdop = (40 - sats * 2 + rng.irange(0, 4)).clamp(6, 99) as u8;
        out.extend_from_slice(&dt.to_le_bytes());
        out.extend_from_slice(&(lat as i32).to_le_bytes());
        out.extend_from_slice(&(lon as i32).to_le_bytes());
        out.extend_from_slice(&(alt_dm as i16).to_le_bytes());
        out.extend_from_slice(&speed_cms.to_le_bytes());
        out.push(sats as u8);
        out.push(hdop);
        dt = dt.wrapping_add(interval);
    }
}

fn accel(out: &mut Vec<u8>, d: &Device, len: usize, rng: &mut Rng) {
    out.extend_from_slice(b"ACC1");
    out.extend_from_slice(&d.serial.to_le_bytes());
    let rate: u16 = [100, 200, 400, 800][d.key[10] as usize % 4];
    let range_g: u8 = [2, 4, 8, 16][d.key[11] as usize % 4];
    out.extend_from_slice(&rate.to_le_bytes());
    out.push(range_g);
    out.push(0x07); // x, y, z
    // Gravity mostly on z (mg), tilted a little per device; a vibration
    // (triangle wave) whose period and amplitude vary per burst.
    let (gx, gy) = (d.byte(12) - 128, d.byte(13) - 128);
    let gz = 1000 - (gx.abs() + gy.abs()) / 4;
    let period = rng.irange(4, 40);
    let amp = rng.irange(0, 300);
    let noise = rng.irange(2, 25);
    let limit = i64::from(range_g) * 1000;
    let mut i = 0i64;
    while out.len() < len {
        let phase = i % period;
        let tri = (phase.min(period - phase) * 4 - period) * amp / period.max(1);
        for (g, k) in [(gx, 1), (gy, 2), (gz, 4)] {
            let v = (g + tri * k / 4 + rng.irange(-noise, noise)).clamp(-limit, limit);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        i += 1;
    }
}

fn power(out: &mut Vec<u8>, d: &Device, ts: u64, len: usize, rng: &mut Rng) {
    let _ = writeln!(out, "pwr/1 id={:08x} u=V,A,W,%SoC", d.serial);
    let nominal = if d.key[14].is_multiple_of(3) { 1200 } else { 2300 }; // deci-volts
    let mut v = nominal + rng.irange(-40, 40);
    // Centi-amps: more load in the daytime.
    let mut a = (d.byte(15) * 4 + (diurnal(ts) + 1000) / 20 + rng.irange(0, 50)).max(0);
    // Battery: drains over the day from a device-specific level.
    let mut soc = (40 + d.byte(16) % 61 - (ts % DAY_MS / 3_600_000) as i64).clamp(3, 100);
    while out.len() < len {
        walk(&mut v, 4, nominal * 9 / 10, nominal * 11 / 10, rng);
        walk(&mut a, 8, 0, 3200, rng);
        if rng.chance(1, 8) {
            soc = (soc - 1).max(0);
        }
        let watts = v * a / 1000;
        fixed(out, v, 1);
        out.push(b' ');
        fixed(out, a, 2);
        let _ = writeln!(out, " {watts} {soc}");
    }
}

const EVENTS: [(&str, &str); 12] = [
    ("INFO", "door opened"),
    ("INFO", "door closed"),
    ("INFO", "motion detected"),
    ("INFO", "heartbeat ok"),
    ("INFO", "config reloaded"),
    ("INFO", "firmware check: up to date"),
    ("WARN", "battery low"),
    ("WARN", "rssi below threshold"),
    ("WARN", "clock drift corrected"),
    ("ERROR", "sensor read timeout"),
    ("ERROR", "uplink retry exhausted"),
    ("DEBUG", "sleeping"),
];

fn log(out: &mut Vec<u8>, d: &Device, ts: u64, len: usize, rng: &mut Rng) {
    let mut t = ts.saturating_sub(rng.below(60_000));
    while out.len() < len {
        let (level, msg) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
        iso8601(out, t);
        let _ = write!(out, " dev-{:08x} {level} {msg}", d.serial);
        match rng.below(3) {
            0 => {
                let _ = write!(out, " zone={}", rng.below(16));
            }
            1 => {
                let _ = write!(out, " rssi=-{}", 40 + rng.below(60));
            }
            _ => {}
        }
        out.push(b'\n');
        t += rng.below(2_000);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
fn iso8601(out: &mut Vec<u8>, ms: u64) {
    let days = (ms / DAY_MS) as i64;
    let rem = ms % DAY_MS;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        let mut s = Vec::new();
        iso8601(&mut s, 1_767_225_600_000);
        assert_eq!(s, b"2026-01-01T00:00:00.000Z");
        s.clear();
        iso8601(&mut s, 951_782_400_000 + 3_723_004); // 2000-02-29T01:02:03.004
        assert_eq!(s, b"2000-02-29T01:02:03.004Z");
    }

    #[test]
    fn every_kind_fills_exactly_and_looks_plausible() {
        let mut out = Vec::new();
        for dev in 0..64u64 {
            let key = crate::rng::derive("test device", &[dev]);
            for len in [0usize, 1, 15, 16, 17, 100, 513, 4096] {
                let mut rng = Rng::new("payload test", &[dev, len as u64]);
                let kind = fill(&mut out, &key, 1_767_225_600_000 + dev * 3_333_333, len, &mut rng);
                assert!((1..=5).contains(&kind));
                assert_eq!(out.len(), len);
                if matches!(kind, KIND_ENV | KIND_POWER | KIND_LOG) {
                    assert!(out.iter().all(|b| b.is_ascii()), "{kind}: {}", String::from_utf8_lossy(&out));
                }
            }
        }
        let key = [0u8; 32];
        let mut rng = Rng::new("x", &[]);
        out.clear();
        env(&mut out, &Device::new(&key), 0, 60, &mut rng);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("env/1 id=00000000 "), "{text}");
    }
}
