//! The network's answer: class scores and the predicted class (sections 1 and 8).

/// Score of class `c`: the mean of its block of output values (section 1).
fn class_score(values: &[f32], per_class: usize, c: usize) -> f32 {
    let blk = &values[c * per_class..(c + 1) * per_class];
    blk.iter().sum::<f32>() / per_class as f32
}

/// Eq. 8.1: the predicted class, argmax of the class-grouped mean somatic potential (the
/// first maximum on ties); the classes are `values.len() / per_class`.
pub fn predict(c_mean: &[f32], per_class: usize) -> u8 {
    let classes = c_mean.len() / per_class;
    let mut best = 0;
    let mut best_score = class_score(c_mean, per_class, 0);
    for c in 1..classes {
        let v = class_score(c_mean, per_class, c);
        if v > best_score {
            best = c;
            best_score = v;
        }
    }
    best as u8
}
