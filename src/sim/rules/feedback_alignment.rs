//! Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016; docs/model.md, section 10):
//! backprop's output error sent down through the fixed random feedback weights Y instead of
//! W^T (eq. 10.4). With `network.feedback = "next_layer"` each hidden layer receives the
//! error of the layer above (feedback alignment proper); with `"broadcast"` every hidden
//! layer receives the output error directly (direct feedback alignment, Nøkland 2016). Y is
//! drawn as the segregated-dendrite rule draws it (section 7) and never changes.

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
        Feedback::Fixed,
    )
}

/// Eqs. 10.2, 10.4, 10.5-10.6 from the last forward phase.
pub(crate) fn learn(model: &Model, params: &mut [LayerParams], state: &mut NetState, exec: &Exec) {
    gradient::learn(model, params, state, exec, Feedback::Fixed);
}
