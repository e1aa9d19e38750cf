//! The `charts` fragment: the last hour of a room's figures (messages per second, push
//! latency, queue depth, jobs by state) drawn on the server as small inline SVG, from the
//! samples [`History`](crate::history::History) keeps. No script draws them and no `style`
//! attribute colours them (the page's policy forbids both): shapes carry classes, and the
//! stylesheet gives them their colours, light or dark.
//!
//! A room or peer token sees its room's charts, allowed by the same rule as `stats`
//! ([`Guard::figures_room`](crate::guard::Guard::figures_room)); the admin token sees the
//! relay's sums, which name no room.

use askama::Template;

use switchboard_core::{Clock, SystemClock};
use switchboard_proto::Millis;

use crate::app::App;
use crate::auth::Caller;
use crate::history::{KEPT, SAMPLE_EVERY, Sample};

use super::DashboardError;

/// The drawing's size in SVG units; the stylesheet scales it to the page's width.
const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 32.0;

/// The stretch of time a chart spans, ending now.
const SPAN_MS: f64 = KEPT as f64 * SAMPLE_EVERY.as_millis() as f64;

/// One line of a sparkline: its SVG points and its class.
pub(crate) struct Line {
    pub class: &'static str,
    pub points: String,
}

/// One bar of a bar chart.
pub(crate) struct Bar {
    pub class: String,
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// The bar's state and count, its tooltip and accessible name.
    pub name: String,
}

pub(crate) struct Chart {
    pub title: &'static str,
    /// The newest value, as text.
    pub latest: String,
    /// What the chart shows, for screen readers (the drawing's `<title>`, its accessible name).
    pub name: String,
    pub lines: Vec<Line>,
    pub bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "charts.html")]
struct ChartsFragment {
    /// Whose figures: "this room's" or "the relay's (all rooms summed)".
    scope: &'static str,
    charts: Vec<Chart>,
}

/// The charts the caller may see: its room's, or the relay's sums for the admin token.
pub(crate) async fn fragment(app: &App, caller: &Caller) -> Result<String, DashboardError> {
    let (scope, samples) = match caller.grant.room() {
        None => ("the relay's, all rooms summed", app.history.relay()),
        Some(_) => {
            let guard = app.guard(caller).await?;
            let room = guard.figures_room().await?;
            ("this room's", app.history.room(room))
        }
    };
    let page = ChartsFragment {
        scope,
        charts: charts(&samples, SystemClock.now_ms()),
    };
    page.render()
        .map_err(|e| DashboardError::Render(e.to_string()))
}

/// The four charts of `samples` (oldest first) as of `now`; none before the first sample.
pub(crate) fn charts(samples: &[Sample], now: Millis) -> Vec<Chart> {
    let Some(newest) = samples.last() else {
        return Vec::new();
    };
    let rates: Vec<(Millis, f64)> = samples.iter().map(|s| (s.at, s.messages_per_sec)).collect();
    let queued: Vec<(Millis, f64)> = samples.iter().map(|s| (s.at, s.queued as f64)).collect();
    let latency = |pick: fn(&crate::history::Latency) -> Millis| -> Vec<(Millis, f64)> {
        samples
            .iter()
            .filter_map(|s| s.latency.as_ref().map(|l| (s.at, pick(l) as f64)))
            .collect()
    };
    let medians = latency(|l| l.median_ms);
    let p95s = latency(|l| l.p95_ms);
    let latency_top = top(p95s.iter().chain(&medians));
    vec![
        Chart {
            title: "Messages/s",
            latest: format_rate(newest.messages_per_sec),
            name: format!(
                "Messages per second over the last hour: now {}, peak {}",
                format_rate(newest.messages_per_sec),
                format_rate(top(&rates))
            ),
            lines: vec![line("spark", &rates, top(&rates), now)],
            bars: Vec::new(),
        },
        Chart {
            title: "Push latency",
            latest: match newest.latency {
                Some(l) => format!("p50 {} · p95 {}", ms(l.median_ms), ms(l.p95_ms)),
                None => "no pushes".into(),
            },
            name: match newest.latency {
                Some(l) => format!(
                    "Push latency over the last hour, median and 95th percentile: now {} and {}",
                    ms(l.median_ms),
                    ms(l.p95_ms)
                ),
                None => "Push latency over the last hour: nothing pushed in the last 10 s".into(),
            },
            lines: vec![
                line("spark p95", &p95s, latency_top, now),
                line("spark", &medians, latency_top, now),
            ],
            bars: Vec::new(),
        },
        Chart {
            title: "Queue depth",
            latest: newest.queued.to_string(),
            name: format!(
                "Copies waiting for delivery over the last hour: now {}, peak {}",
                newest.queued,
                top(&queued)
            ),
            lines: vec![line("spark", &queued, top(&queued), now)],
            bars: Vec::new(),
        },
        jobs_chart(newest),
    ]
}

/// Jobs by state, now: one bar per state.
fn jobs_chart(newest: &Sample) -> Chart {
    let counts: Vec<_> = newest.jobs.each().collect();
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / counts.len() as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, (state, n))| {
            // An empty state still shows a sliver, so the row of states reads as a scale.
            let height = ((*n as f64 / most) * (HEIGHT - 2.0)).max(1.0);
            Bar {
                class: format!("bar bar-{state}"),
                x: coord(i as f64 * slot + 1.0),
                y: coord(HEIGHT - height),
                width: coord(slot - 2.0),
                height: coord(height),
                name: format!("{state}: {n}"),
            }
        })
        .collect();
    let shown: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let latest = if shown.is_empty() {
        "none".to_owned()
    } else {
        shown.join(" · ")
    };
    Chart {
        title: "Jobs by state",
        name: format!("Jobs by state now: {latest}"),
        latest,
        lines: Vec::new(),
        bars,
    }
}

/// The points of one line: time across the last hour, value up from the bottom.
fn line(class: &'static str, values: &[(Millis, f64)], top: f64, now: Millis) -> Line {
    let top = if top > 0.0 { top } else { 1.0 };
    let mut points: Vec<(f64, f64)> = values
        .iter()
        .map(|(at, v)| {
            let x = (WIDTH - (now - at) as f64 / SPAN_MS * WIDTH).clamp(0.0, WIDTH);
            let y = HEIGHT - 1.0 - (v / top).clamp(0.0, 1.0) * (HEIGHT - 2.0);
            (x, y)
        })
        .collect();
    // A line of one point draws nothing: a lone sample shows as a short tick ending at it.
    if let [(x, y)] = points[..] {
        points.insert(0, ((x - 2.0).max(0.0), y));
    }
    let points = points
        .iter()
        .map(|(x, y)| format!("{},{}", coord(*x), coord(*y)))
        .collect::<Vec<_>>()
        .join(" ");
    Line { class, points }
}

fn top<'a>(values: impl IntoIterator<Item = &'a (Millis, f64)>) -> f64 {
    values.into_iter().map(|(_, v)| *v).fold(0.0, f64::max)
}

/// An SVG coordinate, to a tenth of a unit (the drawing is 120 units wide).
fn coord(v: f64) -> String {
    format!("{v:.1}")
}

fn format_rate(per_sec: f64) -> String {
    if per_sec >= 10.0 {
        format!("{per_sec:.0}")
    } else {
        format!("{per_sec:.2}")
    }
}

/// A latency for humans: `12 ms`, `3.4 s`.
fn ms(ms: Millis) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::JobCounts;

    use super::{charts, ms};
    use crate::history::{Latency, Sample};

    fn sample(at: i64, rate: f64, queued: u64) -> Sample {
        Sample {
            at,
            messages_per_sec: rate,
            queued,
            jobs: JobCounts {
                queued: 2,
                failed: 1,
                ..JobCounts::default()
            },
            latency: Some(Latency {
                median_ms: 12,
                p95_ms: 1500,
            }),
        }
    }

    #[test]
    fn no_samples_no_charts() {
        assert!(charts(&[], 0).is_empty());
    }

    #[test]
    fn charts_span_the_last_hour_and_say_their_newest_value() {
        let now = 10_000_000;
        let drawn = charts(&[sample(now - 3_600_000, 0.0, 0), sample(now, 4.0, 7)], now);
        let titles: Vec<_> = drawn.iter().map(|c| c.title).collect();
        assert_eq!(
            titles,
            ["Messages/s", "Push latency", "Queue depth", "Jobs by state"]
        );
        // The oldest point at the left edge and at the bottom, the newest at the right and top.
        assert_eq!(drawn[0].lines[0].points, "0.0,31.0 120.0,1.0");
        assert_eq!(drawn[0].latest, "4.00");
        assert_eq!(drawn[1].latest, "p50 12 ms · p95 1.5 s");
        assert_eq!(drawn[2].latest, "7");
        assert!(drawn[2].name.contains("now 7, peak 7"));
        assert_eq!(drawn[3].latest, "queued 2 · failed 1");
        assert_eq!(drawn[3].bars.len(), 9);
        assert_eq!(drawn[3].bars[0].name, "queued: 2");
        assert_eq!(drawn[3].bars[0].height, "30.0");
        assert_eq!(drawn[3].bars[0].class, "bar bar-queued");
    }

    #[test]
    fn a_lone_sample_is_a_short_tick() {
        let drawn = charts(&[sample(1_000_000, 1.0, 3)], 1_000_000);
        assert_eq!(drawn[2].lines[0].points, "118.0,1.0 120.0,1.0");
    }

    #[test]
    fn latencies_read_in_ms_then_seconds() {
        assert_eq!(ms(0), "0 ms");
        assert_eq!(ms(999), "999 ms");
        assert_eq!(ms(1260), "1.3 s");
    }
}
