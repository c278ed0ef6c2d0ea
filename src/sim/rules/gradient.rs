//! What the two gradient rules of docs/model.md, section 10 share: one forward phase, the
//! output error of the cross-entropy loss, and plain SGD on every layer. They differ only in
//! the matrix that carries an error down to the layer below ([`Feedback`]).

use crate::model::learning;
use crate::model::params::LayerParams;
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::Observer;
use crate::sim::rules::{feedforward_update, forward_phase};
use crate::sim::state::NetState;

/// How a hidden layer receives the error of the layers above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feedback {
    /// Through W_{m+1}^T: the exact gradient (eq. 10.3).
    Transpose,
    /// Through the fixed feedback weights Y_m from the layer's feedback source (eq. 10.4).
    Fixed,
}

/// One training example: a forward phase of `l_f` steps on `image`, then [`learn`] towards
/// `label`. Returns the forward phase's prediction.
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
    feedback: Feedback,
) -> u8 {
    let predicted = forward_phase(model, params, state, image, label, l_f, exec, obs);
    learn(model, params, state, exec, feedback);
    predicted
}

/// Errors of every layer from the forward phase's means, top down (eqs. 10.2-10.4), then
/// W_m <- W_m - eta_m E_m r_{m-1}^T and b_m <- b_m - eta_m E_m (eqs. 10.5-10.6), output layer
/// first. The target is the teacher of the label (`state.teach`).
pub(crate) fn learn(
    model: &Model,
    params: &mut [LayerParams],
    st: &mut NetState,
    exec: &Exec,
    feedback: Feedback,
) {
    let cfg = &model.cfg;
    let d = &model.dynamics;
    let topo = &model.topology;
    let m_layers = params.len();
    learning::cross_entropy_output_error(
        d,
        &st.layers[m_layers - 1].forward.c,
        &st.teach,
        &mut st.errors[m_layers - 1],
    );
    for m in (0..m_layers - 1).rev() {
        let (lower, upper) = st.errors.split_at_mut(m + 1);
        let c_f = &st.layers[m].forward.c;
        match feedback {
            Feedback::Transpose => {
                learning::backprop_error(d, &params[m + 1], &upper[0], c_f, &mut lower[m])
            }
            Feedback::Fixed => {
                let source = topo.feedback_source(m);
                learning::feedback_alignment_error(
                    d,
                    &params[m],
                    &upper[source - m - 1],
                    c_f,
                    &mut lower[m],
                )
            }
        }
    }
    for m in (0..m_layers).rev() {
        if m + 1 < m_layers && !cfg.learning.hidden_learning {
            continue;
        }
        let step = cfg.learning.eta[m] as f32;
        let threads = exec.parallel(params[m].n).threads;
        feedforward_update(
            threads,
            &mut params[m],
            &st.errors[m],
            &st.presyn[m].mean,
            step,
        );
    }
}
