//! Timestamps are stored as Unix milliseconds (both SQL dialects agree on a
//! 64-bit integer); this turns them into the UTC text the console shows,
//! without pulling a date library into the WASM bundle.

/// `2026-11-27 19:40 UTC` for a Unix time in milliseconds.
pub fn format_utc_minutes(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", secs_of_day / 3600, (secs_of_day % 3600) / 60)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc_minutes(0), "1970-01-01 00:00 UTC");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(format_utc_minutes(1_709_251_199_000), "2024-02-29 23:59 UTC");
        assert_eq!(format_utc_minutes(-1), "1969-12-31 23:59 UTC");
    }
}
