//! The risk stage: behavioural features of a request, scored by the embedded model.

pub mod model;
