//! The spikes of every step of a phase, in order: how the phase-at-once schedule
//! ([`crate::sim::schedule`]) hands a layer's spikes to the layers that read them.

/// Spike events of consecutive steps (neuron indices, repeated for counts above one):
/// step t's are `events[ends[t - 1]..ends[t]]`. Cleared, not freed, between phases, so a
/// run allocates only while its first phases grow it.
#[derive(Clone, Debug, Default)]
pub struct EventSeq {
    events: Vec<u32>,
    ends: Vec<usize>,
}

impl EventSeq {
    /// Forgets every step (keeps the memory).
    pub fn clear(&mut self) {
        self.events.clear();
        self.ends.clear();
    }

    /// Appends one step's events.
    #[inline]
    pub fn push_step(&mut self, events: &[u32]) {
        self.events.extend_from_slice(events);
        self.ends.push(self.events.len());
    }

    /// Appends one step whose events are the concatenation of `parts`, in order.
    #[inline]
    pub fn push_step_of<'a>(&mut self, parts: impl IntoIterator<Item = &'a [u32]>) {
        for p in parts {
            self.events.extend_from_slice(p);
        }
        self.ends.push(self.events.len());
    }

    /// Steps held.
    #[inline]
    pub fn steps(&self) -> usize {
        self.ends.len()
    }

    /// Events of step `t`.
    #[inline]
    pub fn step(&self, t: usize) -> &[u32] {
        let lo = if t == 0 { 0 } else { self.ends[t - 1] };
        &self.events[lo..self.ends[t]]
    }

    /// Index of step `t`'s first event among all steps' events.
    #[inline]
    pub fn offset(&self, t: usize) -> usize {
        if t == 0 {
            0
        } else {
            self.ends[t - 1]
        }
    }

    /// Events of all steps together.
    pub fn total(&self) -> usize {
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_come_back_as_pushed() {
        let mut s = EventSeq::default();
        s.push_step(&[3, 1]);
        s.push_step(&[]);
        s.push_step_of([&[7u32][..], &[][..], &[2, 2][..]]);
        assert_eq!(s.steps(), 3);
        assert_eq!(s.step(0), &[3, 1]);
        assert!(s.step(1).is_empty());
        assert_eq!(s.step(2), &[7, 2, 2]);
        assert_eq!(s.total(), 5);
        s.clear();
        assert_eq!((s.steps(), s.total()), (0, 0));
        s.push_step(&[9]);
        assert_eq!(s.step(0), &[9]);
    }
}
