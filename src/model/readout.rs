//! The network's answer: class scores and the predicted class (sections 1 and 8).

/// Class scores: the mean of each class's block of output values (section 1).
pub(crate) fn class_scores(values: &[f32], per_class: usize) -> [f32; 10] {
    let mut s = [0.0f32; 10];
    for (c, v) in s.iter_mut().enumerate() {
        let blk = &values[c * per_class..(c + 1) * per_class];
        *v = blk.iter().sum::<f32>() / per_class as f32;
    }
    s
}

/// Eq. 8.1: the predicted class, argmax of the class-grouped mean somatic potential (the
/// first maximum on ties).
pub fn predict(c_mean: &[f32], per_class: usize) -> u8 {
    let s = class_scores(c_mean, per_class);
    let mut best = 0;
    for (i, &v) in s.iter().enumerate() {
        if v > s[best] {
            best = i;
        }
    }
    best as u8
}
