//! Client demand: who sends how many requests of what size, when.
//!
//! A profile gives a subscription's requests per minute at its daily peak, the mean prompt and
//! completion sizes, the shape of its day, a weekend factor, how repetitive its prompts are (for
//! the semantic cache) and the client addresses it calls from. The model turns it into a Poisson
//! arrival count per minute: `peak_rpm × curve(hour) × weekend × hourly drift × minute noise`.
//!
//! The seeded teams are calibrated against the seeded limits (see `README.md`, "Seed history"):
//! `growth` peaks near 90 % of its 200k TPM (so the busiest minutes hit the limit), the others
//! stay well below theirs.

use serde::{Deserialize, Serialize};

/// The shape of a subscription's day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Curve {
    /// Office hours: low at night, ramping from 08:00, peak 14:00–16:00 UTC.
    Business,
    /// Production traffic: never below 55 % of peak, follows the business day on top.
    AlwaysOn,
    /// Batch jobs: peak 01:00–04:00 UTC, quiet by day.
    NightlyBatch,
    /// The same all day.
    Flat,
}

impl Curve {
    /// The demand factor (0–1] at fractional UTC hour `h` (0 ≤ h < 24).
    pub fn at(self, h: f64) -> f64 {
        const BUSINESS: &[(f64, f64)] = &[
            (0.0, 0.12),
            (6.0, 0.12),
            (8.0, 0.35),
            (10.0, 0.70),
            (13.0, 0.95),
            (15.0, 1.0),
            (17.0, 0.85),
            (19.0, 0.50),
            (21.0, 0.25),
            (24.0, 0.12),
        ];
        const BATCH: &[(f64, f64)] =
            &[(0.0, 0.9), (1.0, 1.0), (4.0, 1.0), (6.0, 0.4), (8.0, 0.15), (18.0, 0.15), (22.0, 0.5), (24.0, 0.9)];
        match self {
            Curve::Business => interp(BUSINESS, h),
            Curve::AlwaysOn => 0.55 + 0.45 * interp(BUSINESS, h),
            Curve::NightlyBatch => interp(BATCH, h),
            Curve::Flat => 1.0,
        }
    }
}

fn interp(points: &[(f64, f64)], h: f64) -> f64 {
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if h >= x0 && h <= x1 {
            return y0 + (y1 - y0) * (h - x0) / (x1 - x0);
        }
    }
    points.last().map_or(1.0, |p| p.1)
}

/// A subscription's client demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Requests per minute at the daily peak (before noise).
    pub peak_rpm: f64,
    /// Mean prompt tokens per request.
    pub prompt_tokens: f64,
    /// Mean completion tokens per request.
    pub completion_tokens: f64,
    pub curve: Curve,
    /// Demand factor on Saturdays and Sundays (UTC).
    #[serde(default = "one")]
    pub weekend: f64,
    /// Share of prompts that repeat an earlier intent (what a semantic cache can serve), 0–1.
    #[serde(default)]
    pub repeat_share: f64,
    /// The deployment name clients call (`/deployments/{name}/chat/completions`).
    #[serde(default = "gpt4o")]
    pub deployment: String,
    /// Client addresses (the `CallerIpAddress` of its requests).
    #[serde(default = "default_ips")]
    pub client_ips: Vec<String>,
}

fn one() -> f64 {
    1.0
}
fn gpt4o() -> String {
    "gpt-4o".into()
}
fn default_ips() -> Vec<String> {
    vec!["10.0.0.10".into()]
}

impl Profile {
    /// Checks the fields, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        let finite = |name: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(format!("'{name}' must be a number between {lo} and {hi}, got {v}"))
            }
        };
        finite("peakRpm", self.peak_rpm, 0.0, 100_000.0)?;
        finite("promptTokens", self.prompt_tokens, 1.0, 1_000_000.0)?;
        finite("completionTokens", self.completion_tokens, 1.0, 1_000_000.0)?;
        finite("weekend", self.weekend, 0.0, 10.0)?;
        finite("repeatShare", self.repeat_share, 0.0, 1.0)?;
        if self.deployment.trim().is_empty() {
            return Err("'deployment' must not be empty".into());
        }
        if self.client_ips.is_empty() || self.client_ips.len() > 64 {
            return Err("'clientIps' must list 1 to 64 addresses".into());
        }
        Ok(())
    }

    fn team(
        peak_rpm: f64,
        prompt: f64,
        completion: f64,
        curve: Curve,
        weekend: f64,
        repeat: f64,
        ips: &[&str],
    ) -> Self {
        Profile {
            peak_rpm,
            prompt_tokens: prompt,
            completion_tokens: completion,
            curve,
            weekend,
            repeat_share: repeat,
            deployment: gpt4o(),
            client_ips: ips.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The seeded tenant's client demand, by subscription id. Tokens per minute at the daily peak:
/// growth 40 × 4,500 = 180,000 (90 % of 200k), prod-critical 28 × 5,000 = 140,000 (35 % of
/// 400k), data-science 5 × 5,500 = 27,500 (55 % of 50k, at night), search 30 × 1,900 = 57,000
/// (57 % of 100k), support 18 × 2,900 = 52,200 (52 % of 100k).
pub fn seeded() -> Vec<(&'static str, Profile)> {
    use Curve::*;
    vec![
        ("growth", Profile::team(40.0, 3_600.0, 900.0, Business, 0.4, 0.30, &["10.20.1.14", "10.20.1.15"])),
        ("prod-critical", Profile::team(28.0, 4_000.0, 1_000.0, AlwaysOn, 0.85, 0.15, &["10.30.4.21", "10.30.4.22"])),
        ("data-science", Profile::team(5.0, 4_500.0, 1_000.0, NightlyBatch, 0.6, 0.05, &["10.40.7.9"])),
        ("search", Profile::team(30.0, 1_600.0, 300.0, Business, 0.5, 0.35, &["10.50.2.31"])),
        ("support", Profile::team(18.0, 2_300.0, 600.0, Business, 0.6, 0.45, &["10.60.3.5"])),
        ("master", Profile::team(0.2, 400.0, 100.0, Flat, 1.0, 0.0, &["10.0.0.10"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_peak_at_one_and_stay_positive() {
        for c in [Curve::Business, Curve::AlwaysOn, Curve::NightlyBatch, Curve::Flat] {
            let vals: Vec<f64> = (0..240).map(|i| c.at(i as f64 / 10.0)).collect();
            let max = vals.iter().cloned().fold(0.0, f64::max);
            assert!((max - 1.0).abs() < 1e-9, "{c:?} {max}");
            assert!(vals.iter().all(|v| *v > 0.0));
        }
        assert!(Curve::Business.at(15.0) > 0.99 && Curve::Business.at(3.0) < 0.2);
        assert!(Curve::NightlyBatch.at(2.0) > 0.99 && Curve::NightlyBatch.at(12.0) < 0.2);
        for (_, p) in seeded() {
            p.validate().unwrap();
        }
        let bad = Profile { repeat_share: 2.0, ..seeded()[0].1.clone() };
        assert!(bad.validate().unwrap_err().contains("repeatShare"));
    }
}
