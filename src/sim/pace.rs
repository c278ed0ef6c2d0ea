//! Whether a training example runs on the thread team or on one thread, chosen by the
//! measured speed of each (never by what they compute: results are the same either way).
//!
//! A team only pays while its threads run at the same time. On a machine without a free
//! core (other jobs, more runs than cores) a helper is often not scheduled, and every step
//! waits for it: measured on the 2-core development machine at load 16, 784-2000-10 took
//! 2.4x longer per example on two threads than on one. So the network times examples in
//! both modes, keeps the faster, and now and then tries the other again, rarely enough
//! (about 2 % of the time lost to the slower mode) that a clear winner costs little, often
//! enough to follow the machine's load within a few hundred examples.

/// Recent timings kept per mode.
const KEEP: usize = 8;
/// Examples of each mode measured before choosing.
const FIRST: usize = 3;
/// Try the slower mode once per about this many times its cost ratio examples (50: about
/// 2 % of the time goes to it).
const PROBE_FACTOR: f64 = 50.0;
/// Try the slower mode at least this often (examples).
const MIN_PROBE_INTERVAL: u64 = 32;
/// ...and at most this seldom.
const MAX_PROBE_INTERVAL: u64 = 2_000;

/// Timings of recent examples in one mode, seconds per step.
#[derive(Clone, Debug, Default)]
struct Ring {
    values: [f64; KEEP],
    len: usize,
    next: usize,
}

impl Ring {
    fn push(&mut self, v: f64) {
        self.values[self.next] = v;
        self.next = (self.next + 1) % KEEP;
        self.len = (self.len + 1).min(KEEP);
    }

    fn median(&self) -> f64 {
        // A copy on the stack: this runs once per training example (no allocation).
        let mut all = self.values;
        let v = &mut all[..self.len];
        v.sort_unstable_by(f64::total_cmp);
        match v.len() {
            0 => f64::INFINITY,
            n if n % 2 == 1 => v[n / 2],
            n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
        }
    }
}

/// The choice between the team and one thread, example by example.
#[derive(Clone, Debug, Default)]
pub struct Pace {
    /// [one thread, team].
    rings: [Ring; 2],
    examples: u64,
    /// Example at which the slower mode is tried next (0: not yet scheduled).
    next_probe: u64,
    /// The mode of the last choice, and whether it was a try of the slower one.
    last: bool,
    probing: bool,
}

impl Pace {
    /// Whether the next example runs on the team: each mode a few times first, then the
    /// faster of the two by their medians, with the slower tried again now and then (and
    /// again at once while a try comes out faster, so a freed machine is noticed quickly).
    pub fn use_team(&mut self) -> bool {
        self.examples += 1;
        self.probing = false;
        let [one, team] = &self.rings;
        self.last = if team.len < FIRST {
            true
        } else if one.len < FIRST {
            false
        } else {
            let (t1, tt) = (one.median(), team.median());
            let team_faster = tt <= t1;
            let ratio = (t1.max(tt) / t1.min(tt).max(1e-12)).max(1.0);
            let interval =
                ((PROBE_FACTOR * ratio) as u64).clamp(MIN_PROBE_INTERVAL, MAX_PROBE_INTERVAL);
            if self.next_probe == 0 {
                self.next_probe = self.examples + interval;
                team_faster
            } else if self.examples >= self.next_probe {
                self.next_probe = self.examples + interval;
                self.probing = true;
                !team_faster
            } else {
                team_faster
            }
        };
        self.last
    }

    /// Records the example just run (in the mode [`Pace::use_team`] chose): its wall time
    /// in seconds per simulated step.
    pub fn record(&mut self, seconds_per_step: f64) {
        if !(seconds_per_step.is_finite() && seconds_per_step > 0.0) {
            return;
        }
        let mode = usize::from(self.last);
        self.rings[mode].push(seconds_per_step);
        // A try of the slower mode that beat the faster one's median: try again next.
        if self.probing && seconds_per_step < self.rings[1 - mode].median() {
            self.next_probe = self.examples + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `n` examples whose per-step time is `one` or `team`; returns how many ran on
    /// the team.
    fn simulate(p: &mut Pace, n: usize, one: f64, team: f64) -> usize {
        (0..n)
            .filter(|_| {
                let t = p.use_team();
                p.record(if t { team } else { one });
                t
            })
            .count()
    }

    #[test]
    fn the_faster_mode_wins_and_the_slower_is_tried_rarely() {
        let mut p = Pace::default();
        // Team twice as fast: nearly every example on the team.
        let on_team = simulate(&mut p, 1000, 2.0, 1.0);
        assert!(on_team > 960, "{on_team}");
        assert!(
            on_team < 1000,
            "the slower mode is tried again now and then"
        );
        // The machine fills up: the team now 2.4x slower. It follows within a few probes.
        let on_team = simulate(&mut p, 1000, 2.0, 4.8);
        assert!(on_team < 60, "{on_team}");
        // And back.
        let on_team = simulate(&mut p, 1000, 2.0, 1.0);
        assert!(on_team > 800, "{on_team}");
    }

    #[test]
    fn a_large_gap_is_probed_seldom() {
        let mut p = Pace::default();
        let on_team = simulate(&mut p, 4000, 8.0, 1.0);
        // Tries of the 8x slower mode every ~400 examples: ~10, plus the first 3.
        assert!(on_team > 4000 - 20, "{on_team}");
        assert!(on_team < 4000 - 3, "{on_team}");
    }

    #[test]
    fn nonsense_timings_are_ignored() {
        let mut p = Pace::default();
        p.use_team();
        p.record(f64::NAN);
        p.record(0.0);
        assert_eq!(p.rings[1].len, 0);
    }
}
