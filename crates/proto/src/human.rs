//! Durations as people write them in prose ("90 days", "2 h 30 min", "57 s"), for every
//! message a person or a model reads. Hand-written: the formatters of the time crates print
//! either every unit (`1m 40s 500ms`) or one unit only (`2160h`); a reader wants the two
//! largest units that are not zero.

use std::time::Duration;

const UNITS: [(u64, &str, &str); 4] = [
    (86_400, "day", "days"),
    (3_600, "h", "h"),
    (60, "min", "min"),
    (1, "s", "s"),
];

/// `duration(Duration::from_secs(7_776_000))` is `"90 days"`; below a second, milliseconds.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{} ms", d.subsec_millis());
    }
    let mut parts = Vec::with_capacity(2);
    let mut rest = secs;
    for (size, one, many) in UNITS {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        } else if !parts.is_empty() {
            // "1 day 0 h 5 min" reads worse than "1 day": stop at the first gap.
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// The same, from whole milliseconds (a wire field); negative counts as zero.
pub fn millis(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    // Round up to whole seconds: "try again in 57 s" must not be too early.
    duration(Duration::from_secs(ms.div_ceil(1_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let s = Duration::from_secs;
        for (d, text) in [
            (Duration::from_millis(350), "350 ms"),
            (s(1), "1 s"),
            (s(57), "57 s"),
            (s(60), "1 min"),
            (s(150), "2 min 30 s"),
            (s(3_600), "1 h"),
            (s(9_000), "2 h 30 min"),
            (s(86_400), "1 day"),
            (s(86_400 + 300), "1 day"),
            (s(7_776_000), "90 days"),
            (s(2 * 86_400 + 3 * 3_600), "2 days 3 h"),
        ] {
            assert_eq!(duration(d), text, "{d:?}");
        }
        assert_eq!(millis(56_200), "57 s");
        assert_eq!(millis(-3), "0 ms");
    }
}
