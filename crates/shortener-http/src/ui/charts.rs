//! A link's statistics as charts, drawn on the server as inline SVG.
//!
//! The web interface shows statistics without JavaScript and under a strict Content
//! Security Policy, so a chart is markup: an `<svg>` element to put in the page, with no
//! script, no `style` attribute, no link and no URL of any kind (not even the SVG
//! namespace: inline in HTML, `<svg>` is SVG already). Colours are `currentColor`
//! presentation attributes on the classes `bar`, `bar-bots`, `axis` and `label`; any CSS
//! rule beats a presentation attribute, so the page's stylesheet themes the charts (light
//! and dark) and without it they still follow the text colour. The texts come from
//! outside (referrer hosts, browser names), so every one goes through [`escape`]. A chart
//! has a `viewBox` and `width="100%"`: the browser scales it to a phone or a desktop.

use std::fmt::Write;

use shortener_app::DailyClicks;

use crate::markup::escape;

/// The daily chart's `viewBox` size: wide, as a period is read left to right.
const DAILY_WIDTH: f64 = 640.0;
const DAILY_HEIGHT: f64 = 240.0;
/// Room left of the plot for the tick values.
const DAILY_LEFT: f64 = 56.0;
const DAILY_RIGHT: f64 = 8.0;
const DAILY_TOP: f64 = 12.0;
/// Room under the plot for the first and last dates.
const DAILY_BOTTOM: f64 = 28.0;
/// The most intervals on the y axis: with 0, at most five tick values, few enough to
/// read at a phone's width.
const MAX_INTERVALS: u64 = 4;

/// The breakdown chart's `viewBox` width and the height of one row: about the width a
/// half-page card has on a desktop and a phone's screen, so its text is read at about
/// its own size (a breakdown sits in a card of half the page on a desktop).
const BREAKDOWN_WIDTH: f64 = 360.0;
const ROW: f64 = 22.0;
/// Room left of the bars for the names, about [`NAME_CHARS`] characters at the font size.
const NAME_WIDTH: f64 = 130.0;
/// Room right of the bars for the count and percentage.
const VALUE_WIDTH: f64 = 80.0;
/// Names longer than this many characters are cut (with an ellipsis) so that a 255-char
/// referrer host cannot push the bars off the chart; the full name is in the row's title.
const NAME_CHARS: usize = 20;

/// A bar chart of clicks per day over `days` (oldest first, as [`shortener_app::LinkStats`]
/// gives them, zeros included): one bar a day, its bots the part at the bottom in
/// `bar-bots`, a y axis of round values, the first and last dates under it, each day's
/// counts in its bar's tooltip. Without a click (or a day) it is an empty frame that says
/// so, rather than a chart scaled to nothing.
pub(crate) fn daily(days: &[DailyClicks]) -> String {
    let counts: Vec<(u64, u64)> = days
        .iter()
        .map(|d| {
            let clicks = count(d.clicks);
            (clicks, count(d.bots).min(clicks))
        })
        .collect();
    let total = counts
        .iter()
        .fold(0_u64, |sum, (c, _)| sum.saturating_add(*c));
    let bots = counts
        .iter()
        .fold(0_u64, |sum, (_, b)| sum.saturating_add(*b));
    let max = counts.iter().map(|(c, _)| *c).max().unwrap_or(0);
    let period = match (days.first(), days.last()) {
        (Some(first), Some(last)) if first.day != last.day => {
            format!(", {} to {}", first.day, last.day)
        }
        (Some(first), _) => format!(", {}", first.day),
        _ => String::new(),
    };
    let aria = match (total, bots) {
        (0, _) => format!("Clicks per day{period}: no clicks yet"),
        (_, 0) => format!("Clicks per day{period}: {total} in all"),
        _ => format!(
            "Clicks per day{period}: {total} in all ({})",
            plural(bots, "bot")
        ),
    };

    let plot_width = DAILY_WIDTH - DAILY_LEFT - DAILY_RIGHT;
    let plot_height = DAILY_HEIGHT - DAILY_TOP - DAILY_BOTTOM;
    let base = DAILY_TOP + plot_height;
    let right = DAILY_WIDTH - DAILY_RIGHT;
    let mut svg = open(DAILY_WIDTH, DAILY_HEIGHT, 14, &aria);
    // The frame: the y axis and the x axis.
    let _ = write!(
        svg,
        "<line class=\"axis\" stroke=\"currentColor\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\"/>\
         <line class=\"axis\" stroke=\"currentColor\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/>",
        l = num(DAILY_LEFT),
        t = num(DAILY_TOP),
        b = num(base),
        r = num(right),
    );
    if let Some(first) = days.first() {
        let _ = write!(
            svg,
            "<text class=\"label date\" fill=\"currentColor\" x=\"{}\" y=\"{}\">{}</text>",
            num(DAILY_LEFT),
            num(base + 18.0),
            text(&first.day.to_string()),
        );
    }
    if let Some(last) = days.last().filter(|_| days.len() > 1) {
        let _ = write!(
            svg,
            "<text class=\"label date\" fill=\"currentColor\" x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">{}</text>",
            num(right),
            num(base + 18.0),
            text(&last.day.to_string()),
        );
    }
    if max == 0 {
        // Nothing to scale to: no ticks, no bars (and no division by zero).
        let _ = write!(
            svg,
            "<text class=\"label empty\" fill=\"currentColor\" x=\"{}\" y=\"{}\" \
             text-anchor=\"middle\">No clicks yet</text></svg>",
            num(DAILY_LEFT + plot_width / 2.0),
            num(DAILY_TOP + plot_height / 2.0),
        );
        return svg;
    }

    let ticks = ticks(max);
    // `ticks` ends at or above `max`, which is above 0 here.
    let top = ticks.last().copied().unwrap_or(max).max(1) as f64;
    let height = |n: u64| n as f64 / top * plot_height;
    for tick in &ticks {
        let y = base - height(*tick);
        if *tick > 0 {
            let _ = write!(
                svg,
                "<line class=\"axis grid\" stroke=\"currentColor\" stroke-opacity=\"0.2\" \
                 x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
                num(DAILY_LEFT),
                num(right),
                y = num(y),
            );
        }
        let _ = write!(
            svg,
            "<text class=\"label tick\" fill=\"currentColor\" x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">{tick}</text>",
            num(DAILY_LEFT - 6.0),
            num(y + 4.0),
        );
    }
    let slot = plot_width / counts.len() as f64;
    // A gap between bars while they are wide enough to spare one; a year's bars touch.
    let gap = if slot >= 4.0 { slot * 0.2 } else { 0.0 };
    for (i, (day, (clicks, bots))) in days.iter().zip(&counts).enumerate() {
        let x = DAILY_LEFT + i as f64 * slot + gap / 2.0;
        let (h, hb) = (height(*clicks), height(*bots));
        let tooltip = if *bots > 0 {
            format!(
                "{}: {} ({})",
                day.day,
                plural(*clicks, "click"),
                plural(*bots, "bot")
            )
        } else {
            format!("{}: {}", day.day, plural(*clicks, "click"))
        };
        // The bar is all the day's clicks; the bots' part is drawn over its bottom, which
        // stacks humans on bots without a bar to add up.
        let _ = write!(
            svg,
            "<g class=\"day\"><title>{}</title>\
             <rect class=\"bar\" fill=\"currentColor\" fill-opacity=\"0.45\" \
             x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{}\"/>\
             <rect class=\"bar-bots\" fill=\"currentColor\" \
             x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{}\"/></g>",
            text(&tooltip),
            num(base - h),
            num(h),
            num(base - hb),
            num(hb),
            x = num(x),
            w = num(slot - gap),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars of a breakdown (`label` names it, e.g. "Referrers"): `rows` are the
/// values and their clicks in the order to show (the top values, then `(other)`), each
/// with its name at the left, cut to [`NAME_CHARS`] (the full name in the row's title),
/// its count and share of all the rows at the right, and a bar as long as its count is
/// to the largest's, so that the ranking reads at a glance. Without a visit it is a
/// short text.
pub(crate) fn breakdown<S: AsRef<str>>(label: &str, rows: &[(S, i64)]) -> String {
    let rows: Vec<(&str, u64)> = rows.iter().map(|(n, c)| (n.as_ref(), count(*c))).collect();
    let total = rows
        .iter()
        .fold(0_u64, |sum, (_, c)| sum.saturating_add(*c));
    let largest = rows.iter().map(|(_, c)| *c).max().unwrap_or(0);
    if largest == 0 {
        let mut svg = open(
            BREAKDOWN_WIDTH,
            ROW * 2.0,
            11,
            &format!("{label}: no visits yet"),
        );
        let _ = write!(
            svg,
            "<text class=\"label empty\" fill=\"currentColor\" x=\"0\" y=\"{}\">\
             No visits yet</text></svg>",
            num(ROW + 4.0),
        );
        return svg;
    }

    let aria = format!("{label}: {}", plural(total, "visit"));
    let mut svg = open(BREAKDOWN_WIDTH, rows.len() as f64 * ROW + 8.0, 11, &aria);
    let bar_x = NAME_WIDTH + 8.0;
    let bar_room = BREAKDOWN_WIDTH - bar_x - VALUE_WIDTH;
    for (i, (name, n)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW;
        let baseline = y + ROW / 2.0 + 4.0;
        let share = percent(*n, total);
        let _ = write!(
            svg,
            "<g class=\"row\"><title>{}</title>\
             <text class=\"label name\" fill=\"currentColor\" x=\"0\" y=\"{baseline}\">{}</text>\
             <rect class=\"bar\" fill=\"currentColor\" fill-opacity=\"0.45\" \
             x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\
             <text class=\"label value\" fill=\"currentColor\" x=\"{}\" y=\"{baseline}\" \
             text-anchor=\"end\">{} ({})</text></g>",
            text(&format!("{name}: {} ({share})", plural(*n, "visit"))),
            text(&shorten(name)),
            num(bar_x),
            num(y + 4.0),
            num(*n as f64 / largest as f64 * bar_room),
            num(ROW - 8.0),
            num(BREAKDOWN_WIDTH),
            n,
            text(&share),
            baseline = num(baseline),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The opening tag of a chart `width` × `height` in its own units, scaled to the width of
/// its container, described by `aria` for screen readers (the picture alone says nothing
/// to them).
/// `font` is in the chart's units: the wide daily chart is shrunk more on a phone, so its
/// labels are drawn larger.
fn open(width: f64, height: f64, font: u32, aria: &str) -> String {
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\" \
         aria-label=\"{}\" font-size=\"{font}\">",
        num(width),
        num(height),
        text(aria),
    )
}

/// The tick values of an axis up to `max` (above 0): 0 and equal steps of 1, 2 or 5 times
/// a power of ten, the smallest such step that covers `max` in at most
/// [`MAX_INTERVALS`] of them (and at least two, so that a lone click still has an axis).
fn ticks(max: u64) -> Vec<u64> {
    let mut magnitude = 1_u64;
    loop {
        for m in [1, 2, 5] {
            let step = magnitude.saturating_mul(m);
            let intervals = max.div_ceil(step);
            if intervals <= MAX_INTERVALS {
                return (0..=intervals.max(2))
                    .map(|i| i.saturating_mul(step))
                    .collect();
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// A count as the charts take it: the stores never give a negative, but a chart of one
/// would draw upside down.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A coordinate, at most two decimals (enough at any screen size, and short), and a
/// finite number whatever it is given, so that nothing can write `NaN` into the SVG.
fn num(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    if !rounded.is_finite() || rounded == 0.0 {
        return "0".into();
    }
    format!("{rounded}")
}

/// `n` of `what`, in the plural when it is not one.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `n`'s share of `total`, in whole percents; a share too small to round to 1% is `<1%`
/// rather than a `0%` that looks like nothing.
fn percent(n: u64, total: u64) -> String {
    if total == 0 || n == 0 {
        return "0%".into();
    }
    let share = n as f64 * 100.0 / total as f64;
    if share < 0.5 {
        "<1%".into()
    } else {
        format!("{share:.0}%")
    }
}

/// `name` cut to [`NAME_CHARS`] characters, the last of them an ellipsis when it is cut.
fn shorten(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        return name.into();
    }
    let mut short: String = name.chars().take(NAME_CHARS - 1).collect();
    short.push('…');
    short
}

/// `s` as the text of an element or attribute: escaped, and its control characters
/// replaced, as XML allows almost none of them (a stored name may hold any).
fn text(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    escape(&clean)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn day(date: &str, clicks: i64, bots: i64) -> DailyClicks {
        DailyClicks {
            day: date.parse().unwrap(),
            clicks,
            bots,
        }
    }

    /// `n` days from 2026-11-01, the clicks and bots of each from `f`.
    fn days(n: usize, f: impl Fn(usize) -> (i64, i64)) -> Vec<DailyClicks> {
        let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        (0..n)
            .map(|i| {
                let (clicks, bots) = f(i);
                DailyClicks {
                    day: first + chrono::Days::new(i as u64),
                    clicks,
                    bots,
                }
            })
            .collect()
    }

    /// The elements of `doc` named `tag` whose classes include `class`.
    fn with_class<'a>(
        doc: &'a roxmltree::Document<'a>,
        tag: &str,
        class: &str,
    ) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| {
                n.has_tag_name(tag)
                    && n.attribute("class")
                        .is_some_and(|c| c.split(' ').any(|c| c == class))
            })
            .collect()
    }

    fn number(node: &roxmltree::Node, attribute: &str) -> f64 {
        node.attribute(attribute).unwrap().parse().unwrap()
    }

    /// What a chart must never hold, whatever it is given: a number that is none, or
    /// anything a strict CSP refuses or that reaches out of the page.
    fn assert_clean(svg: &str) {
        roxmltree::Document::parse(svg).unwrap();
        for bad in ["NaN", "inf", "style", "<script", "href", "http", "url("] {
            assert!(!svg.contains(bad), "{bad} in {svg}");
        }
        assert!(svg.starts_with("<svg ") && svg.contains("width=\"100%\""));
        assert!(svg.contains("viewBox=\"0 0 "));
    }

    #[test]
    fn one_bar_a_day_as_tall_as_its_clicks() {
        let clicks = |i: usize| match i {
            4 => 0,
            17 => 120,
            _ => (i as i64 * 7) % 50 + 1,
        };
        let input = days(30, |i| (clicks(i), clicks(i) / 4));
        let svg = daily(&input);
        assert_clean(&svg);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let bars = with_class(&doc, "rect", "bar");
        let bots = with_class(&doc, "rect", "bar-bots");
        assert_eq!(bars.len(), 30);
        assert_eq!(bots.len(), 30);
        let heights: Vec<f64> = bars.iter().map(|b| number(b, "height")).collect();
        let tallest = heights[17];
        assert!(tallest > 0.0);
        assert!(heights.iter().all(|h| *h <= tallest), "{heights:?}");
        assert_eq!(heights[4], 0.0);
        for (i, h) in heights.iter().enumerate() {
            let expected = tallest * clicks(i) as f64 / 120.0;
            assert!((h - expected).abs() < 0.02, "day {i}: {h} != {expected}");
            // Every bar stands on the same base line, and its bots within it.
            let bottom = number(&bars[i], "y") + h;
            assert!((bottom - number(&bars[0], "y") - heights[0]).abs() < 0.02);
            assert!(number(&bots[i], "height") <= *h);
            assert!((number(&bots[i], "y") + number(&bots[i], "height") - bottom).abs() < 0.02);
        }
        // Bars left to right, oldest first, none overlapping the next.
        for pair in bars.windows(2) {
            assert!(number(&pair[0], "x") + number(&pair[0], "width") <= number(&pair[1], "x"));
        }
    }

    #[test]
    fn each_bar_tells_its_day_in_its_title_and_the_chart_its_period() {
        let input = vec![
            day("2026-11-30", 5, 0),
            day("2026-12-01", 12, 3),
            day("2026-12-02", 1, 1),
        ];
        let svg = daily(&input);
        assert_clean(&svg);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let titles: Vec<&str> = with_class(&doc, "g", "day")
            .iter()
            .map(|g| {
                g.children()
                    .find(|c| c.has_tag_name("title"))
                    .and_then(|t| t.text())
                    .unwrap()
            })
            .collect();
        assert_eq!(
            titles,
            [
                "2026-11-30: 5 clicks",
                "2026-12-01: 12 clicks (3 bots)",
                "2026-12-02: 1 click (1 bot)"
            ]
        );
        let root = doc.root_element();
        assert_eq!(root.attribute("role"), Some("img"));
        assert_eq!(
            root.attribute("aria-label"),
            Some("Clicks per day, 2026-11-30 to 2026-12-02: 18 in all (4 bots)")
        );
        let dates: Vec<&str> = with_class(&doc, "text", "date")
            .iter()
            .filter_map(|t| t.text())
            .collect();
        assert_eq!(dates, ["2026-11-30", "2026-12-02"]);
    }

    #[test]
    fn the_ticks_are_round_values_that_just_cover_the_largest_day() {
        for max in [
            1, 2, 3, 4, 5, 7, 12, 50, 99, 100, 101, 345, 999, 1001, 123_456,
        ] {
            let svg = daily(&days(10, |i| (if i == 3 { max } else { 0 }, 0)));
            assert_clean(&svg);
            let doc = roxmltree::Document::parse(&svg).unwrap();
            let ticks: Vec<i64> = with_class(&doc, "text", "tick")
                .iter()
                .map(|t| t.text().unwrap().parse().unwrap())
                .collect();
            assert!((3..=5).contains(&ticks.len()), "{max}: {ticks:?}");
            assert_eq!(ticks[0], 0, "{max}: {ticks:?}");
            let step = ticks[1];
            assert!(
                ticks.windows(2).all(|w| w[1] - w[0] == step),
                "{max}: {ticks:?}"
            );
            let mut mantissa = step;
            while mantissa % 10 == 0 {
                mantissa /= 10;
            }
            assert!([1, 2, 5].contains(&mantissa), "{max}: {ticks:?}");
            let last = *ticks.last().unwrap();
            assert!(last >= max, "{max}: {ticks:?}");
            assert!(last - step < max || ticks.len() == 3, "{max}: {ticks:?}");
            // The largest day's bar reaches the tick of its value's height.
            let bar = &with_class(&doc, "rect", "bar")[3];
            let top_tick = number(&with_class(&doc, "text", "tick")[ticks.len() - 1], "y") - 4.0;
            let bar_top = number(bar, "y");
            let base = bar_top + number(bar, "height");
            let expected = base - (base - top_tick) * max as f64 / last as f64;
            assert!((bar_top - expected).abs() < 0.02, "{max}");
        }
    }

    #[test]
    fn a_year_and_a_day_both_draw() {
        for n in [1, 366] {
            let svg = daily(&days(n, |i| ((i % 9) as i64 + 1, (i % 3) as i64)));
            assert_clean(&svg);
            let doc = roxmltree::Document::parse(&svg).unwrap();
            assert_eq!(with_class(&doc, "rect", "bar").len(), n);
        }
        let one = daily(&[day("2026-12-01", 3, 0)]);
        assert!(one.contains("aria-label=\"Clicks per day, 2026-12-01: 3 in all\""));
    }

    #[test]
    fn no_click_draws_an_empty_frame_that_says_so() {
        for input in [vec![], days(30, |_| (0, 0)), days(2, |_| (-5, -1))] {
            let svg = daily(&input);
            assert_clean(&svg);
            let doc = roxmltree::Document::parse(&svg).unwrap();
            assert!(with_class(&doc, "rect", "bar").is_empty());
            assert!(!with_class(&doc, "line", "axis").is_empty());
            let empty = with_class(&doc, "text", "empty");
            assert_eq!(empty.len(), 1);
            assert_eq!(empty[0].text(), Some("No clicks yet"));
        }
    }

    #[test]
    fn a_name_is_escaped_and_reads_back_as_it_was() {
        let name = "<script>&\"'x";
        let svg = breakdown("Referrers <b>", &[(name, 3), ("(other)", 1)]);
        assert_clean(&svg);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let names: Vec<&str> = with_class(&doc, "text", "name")
            .iter()
            .filter_map(|t| t.text())
            .collect();
        assert_eq!(names, [name, "(other)"]);
        assert_eq!(
            doc.root_element().attribute("aria-label"),
            Some("Referrers <b>: 4 visits")
        );
        let values: Vec<&str> = with_class(&doc, "text", "value")
            .iter()
            .filter_map(|t| t.text())
            .collect();
        assert_eq!(values, ["3 (75%)", "1 (25%)"]);
    }

    #[test]
    fn a_long_name_is_cut_for_show_and_whole_in_its_title() {
        let name = format!("{}.example", "a".repeat(292));
        assert_eq!(name.chars().count(), 300);
        let svg = breakdown("Referrers", &[(name.clone(), 10)]);
        assert_clean(&svg);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let row = with_class(&doc, "g", "row")[0];
        let shown = with_class(&doc, "text", "name")[0].text().unwrap();
        assert!(shown.chars().count() <= 28, "{shown}");
        assert!(shown.ends_with('…') && name.starts_with(shown.trim_end_matches('…')));
        let title = row
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap();
        assert_eq!(title, format!("{name}: 10 visits (100%)"));
        // A name of control characters still makes a document.
        assert_clean(&breakdown("Browsers", &[("a\u{0}b\u{1b}", 1)]));
    }

    #[test]
    fn bars_are_as_long_as_their_counts_to_the_largest() {
        let rows = [("a", 200), ("b", 100), ("c", 1), ("(other)", 0)];
        let svg = breakdown("Countries", &rows);
        assert_clean(&svg);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let widths: Vec<f64> = with_class(&doc, "rect", "bar")
            .iter()
            .map(|b| number(b, "width"))
            .collect();
        assert_eq!(widths.len(), 4);
        assert!(widths[0] > 0.0);
        assert!((widths[1] - widths[0] / 2.0).abs() < 0.02, "{widths:?}");
        assert!(widths[2] > 0.0 && widths[2] < widths[1]);
        assert_eq!(widths[3], 0.0);
        assert!(svg.contains(">1 (&lt;1%)</text>"));
    }

    #[test]
    fn no_visit_is_a_short_text() {
        let none: [(&str, i64); 0] = [];
        for svg in [
            breakdown("Referrers", &none),
            breakdown("Referrers", &[("a", 0)]),
        ] {
            assert_clean(&svg);
            let doc = roxmltree::Document::parse(&svg).unwrap();
            assert!(with_class(&doc, "rect", "bar").is_empty());
            assert_eq!(
                with_class(&doc, "text", "empty")[0].text(),
                Some("No visits yet")
            );
        }
    }

    #[test]
    fn ticks_never_overflow() {
        let largest = ticks(i64::MAX as u64);
        assert!(*largest.last().unwrap() >= i64::MAX as u64);
        assert_eq!(ticks(1), [0, 1, 2]);
        assert_eq!(ticks(100), [0, 50, 100]);
        assert_eq!(ticks(345), [0, 100, 200, 300, 400]);
    }
}
