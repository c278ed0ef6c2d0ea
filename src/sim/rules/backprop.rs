//! Backprop on the rate network (docs/model.md, section 10): the exact gradient of the
//! output's cross-entropy loss, sent down through W^T (eq. 10.3). The upper bound every
//! local rule is compared with; its hidden updates are the reference of `alignment.csv`.

use crate::model::params::LayerParams;
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::Observer;
use crate::sim::rules::gradient::{self, Feedback};
use crate::sim::state::NetState;

/// One training example: one forward phase of `l_f` steps, then [`learn`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_example<O: Observer>(
    model: &Model,
    params: &mut [LayerParams],
    state: &mut NetState,
    image: &[u8],
    label: u8,
    l_f: usize,
    exec: &Exec,
    obs: &mut O,
) -> u8 {
    gradient::train_example(
        model,
        params,
        state,
        image,
        label,
        l_f,
        exec,
        obs,
        Feedback::Transpose,
    )
}

/// Eqs. 10.2, 10.3, 10.5-10.6 from the last forward phase.
pub(crate) fn learn(model: &Model, params: &mut [LayerParams], state: &mut NetState, exec: &Exec) {
    gradient::learn(model, params, state, exec, Feedback::Transpose);
}
