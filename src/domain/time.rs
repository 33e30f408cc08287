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

/// Reads the UTC time a person types or a `datetime-local` input sends:
/// `2026-11-27T19:40`, `2026-11-27 19:40`, with or without `:SS`, or a
/// bare date (midnight). Returns Unix milliseconds.
pub fn parse_utc_minutes(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches(" UTC").trim_end_matches('Z');
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, time),
        None => (text, "00:00"),
    };
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let mut time_parts = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (time_parts.next()??, time_parts.next()??);
    let second = time_parts.next().unwrap_or(Some(0))?;
    let valid = (1..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    // A day past the month's end (Feb 30) would roll over: refuse it.
    if civil_from_days(days) != (year, month as u32, day as u32) {
        return None;
    }
    Some(((days * 86_400) + hour * 3600 + minute * 60 + second) * 1000)
}

/// `2026-11-27T19:40`, the form a `datetime-local` input shows.
pub fn format_input_minutes(unix_ms: i64) -> String {
    format_utc_minutes(unix_ms).trim_end_matches(" UTC").replacen(' ', "T", 1)
}

/// Howard Hinnant's civil-to-days algorithm, the inverse of the one below.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

/// Milliseconds since the Unix epoch, the store's one time unit. Server
/// only: the browser's clock is not the one that orders changes.
#[cfg(feature = "server")]
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
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

    #[test]
    fn parses_what_people_and_inputs_type() {
        assert_eq!(parse_utc_minutes("2024-02-29T23:59:59"), Some(1_709_251_199_000));
        assert_eq!(parse_utc_minutes("2024-02-29 23:59"), Some(1_709_251_140_000));
        assert_eq!(parse_utc_minutes("1970-01-01"), Some(0));
        assert_eq!(parse_utc_minutes("2024-02-29 23:59 UTC"), Some(1_709_251_140_000));
        for bad in
            ["", "yesterday", "2023-02-29", "2024-13-01", "2024-01-01T24:00", "2024-01-01T10", "99999999999999-01-01"]
        {
            assert_eq!(parse_utc_minutes(bad), None, "{bad}");
        }
        assert_eq!(format_input_minutes(1_709_251_140_000), "2024-02-29T23:59");
        assert_eq!(parse_utc_minutes(&format_input_minutes(1_709_251_140_000)), Some(1_709_251_140_000));
    }
}
