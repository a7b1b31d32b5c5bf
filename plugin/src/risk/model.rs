//! The risk model: `model/risk.onnx`, embedded with `include_bytes!` and run with tract.
//!
//! The ONNX file is decoded with tract-onnx's protobuf types and wired into a tract-core `TypedModel`
//! by a loader that knows exactly the operators the exported model uses (MatMul, Add, Sub, Mul,
//! Sigmoid); any other operator is a load error. Why not `tract_onnx::onnx()`: its operator register
//! and inference layer (tract-hir, every ONNX op, FFTs, NNEF) make the filter 9-15 MB of Wasm, which
//! Envoy's V8 compiles eagerly at every config load for seconds; tract-core alone is what running
//! this graph needs (see model/MODEL_CARD.md for the size, compile-time and latency numbers).
//!
//! The model (model/train.py) is a logistic regression: `probability = sigmoid(x . w + b)` and
//! `contributions = (x - baseline) * w`, so the contributions explain the score exactly and additively.

use prost::Message;
use std::collections::HashMap;
use std::fmt;
use tract_core::internal::*;
use tract_core::ops::change_axes::wire_with_rank_broadcast;
use tract_core::ops::einsum::EinSum;
use tract_onnx::data_resolver::FopenDataResolver;
use tract_onnx::pb;

/// `model/risk.onnx`, as trained and exported by `make model`.
static EMBEDDED: &[u8] = include_bytes!("../../../model/risk.onnx");

/// The risk model, ready to score: load it once per VM (loading optimises the graph).
pub struct RiskModel {
    plan: Arc<TypedSimplePlan>,
    width: usize,
    feature_names: Vec<String>,
}

/// A score and its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutput {
    /// Probability that the request is an attack, 0 to 1.
    pub probability: f32,
    /// One contribution per input feature, in input order, in logit units; positive raises the risk.
    pub contributions: Vec<f32>,
}

/// Why the model did not load or score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The ONNX file is malformed or uses something this loader does not run.
    Load(String),
    /// The input does not have one value per feature.
    Shape {
        /// Features the model takes.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// tract failed while running the graph, or its outputs are not what the model promises.
    Run(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Load(m) => write!(f, "risk model does not load: {m}"),
            ModelError::Shape { expected, got } => {
                write!(f, "risk model takes {expected} features, got {got}")
            }
            ModelError::Run(m) => write!(f, "risk model failed: {m}"),
        }
    }
}

impl std::error::Error for ModelError {}

fn load_err(e: impl fmt::Display) -> ModelError {
    ModelError::Load(e.to_string())
}

fn run_err(e: impl fmt::Display) -> ModelError {
    ModelError::Run(e.to_string())
}

impl RiskModel {
    /// The model embedded in the filter (`model/risk.onnx`).
    pub fn embedded() -> Result<RiskModel, ModelError> {
        RiskModel::from_onnx(EMBEDDED)
    }

    /// Loads an ONNX model with one input `[batch, N]` and the outputs `probability` `[batch, 1]` and
    /// `contributions` `[batch, N]`, in that order.
    pub fn from_onnx(bytes: &[u8]) -> Result<RiskModel, ModelError> {
        let proto = pb::ModelProto::decode(bytes).map_err(load_err)?;
        let graph = proto.graph.as_ref().ok_or_else(|| load_err("no graph"))?;
        let (model, width) = wire(graph)?;
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| load_err(format!("{e:#}")))?;
        let feature_names = proto
            .metadata_props
            .iter()
            .find(|p| p.key == "feature_names")
            .map(|p| p.value.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let model = RiskModel {
            plan,
            width,
            feature_names,
        };
        // A model that cannot score a neutral request is refused at load, not at the first request.
        model.score(&vec![0.0; width])?;
        Ok(model)
    }

    /// How many features the model takes.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The feature names the model was trained on (its `feature_names` metadata), in input order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Scores one feature vector.
    pub fn score(&self, features: &[f32]) -> Result<ModelOutput, ModelError> {
        if features.len() != self.width {
            return Err(ModelError::Shape {
                expected: self.width,
                got: features.len(),
            });
        }
        let input = Tensor::from_shape(&[1, self.width], features).map_err(run_err)?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(run_err)?;
        let values = |i: usize| -> Result<Vec<f32>, ModelError> {
            let t = outputs
                .get(i)
                .ok_or_else(|| run_err(format!("missing output {i}")))?;
            let view = t.to_plain_array_view::<f32>().map_err(run_err)?;
            Ok(view.iter().copied().collect())
        };
        let probability = values(0)?;
        let contributions = values(1)?;
        match probability.as_slice() {
            [p] if p.is_finite() && contributions.len() == self.width => Ok(ModelOutput {
                probability: *p,
                contributions,
            }),
            _ => Err(run_err(format!(
                "unexpected outputs: {} probabilities, {} contributions",
                probability.len(),
                contributions.len()
            ))),
        }
    }
}

/// The ONNX graph as a tract-core model with a batch of one: (model, feature count).
fn wire(graph: &pb::GraphProto) -> Result<(TypedModel, usize), ModelError> {
    let mut model = TypedModel::default();
    let mut wires: HashMap<&str, OutletId> = HashMap::new();
    for init in &graph.initializer {
        let tensor = tract_onnx::tensor::load_tensor(&FopenDataResolver, init, None)
            .map_err(|e| load_err(format!("initializer {}: {e}", init.name)))?;
        let name = model.unique_name(format!("init.{}", init.name));
        let outlet = model.add_const(name, tensor).map_err(load_err)?;
        wires.insert(init.name.as_str(), outlet);
    }
    let mut width = None;
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !wires.contains_key(i.name.as_str()))
        .collect();
    for input in inputs {
        if width.is_some() {
            return Err(load_err("more than one input"));
        }
        let n = input_width(input)?;
        let outlet = model
            .add_source(input.name.clone(), f32::fact([1, n]))
            .map_err(load_err)?;
        wires.insert(input.name.as_str(), outlet);
        width = Some(n);
    }
    let width = width.ok_or_else(|| load_err("no input"))?;
    for node in &graph.node {
        let inputs = node
            .input
            .iter()
            .map(|i| {
                wires
                    .get(i.as_str())
                    .copied()
                    .ok_or_else(|| load_err(format!("node {}: unknown input {i}", node.name)))
            })
            .collect::<Result<TVec<OutletId>, ModelError>>()?;
        let name = model.unique_name(format!("node.{}", node.name));
        let wired = match (node.op_type.as_str(), inputs.len()) {
            ("Add", 2) => {
                wire_with_rank_broadcast(name, &mut model, tract_core::ops::math::add(), &inputs)
            }
            ("Sub", 2) => {
                wire_with_rank_broadcast(name, &mut model, tract_core::ops::math::sub(), &inputs)
            }
            ("Mul", 2) => {
                wire_with_rank_broadcast(name, &mut model, tract_core::ops::math::mul(), &inputs)
            }
            ("Sigmoid", 1) => model.wire_node(name, tract_core::ops::nn::sigmoid(), &inputs),
            ("MatMul", 2) => "mk,kn->mn".parse().and_then(|axes| {
                model.wire_node(name, EinSum::new(axes, f32::datum_type()), &inputs)
            }),
            (op, n) => {
                return Err(load_err(format!(
                    "unsupported operator {op} with {n} inputs"
                )))
            }
        }
        .map_err(|e| load_err(format!("node {} ({}): {e:#}", node.name, node.op_type)))?;
        match (node.output.as_slice(), wired.as_slice()) {
            ([out], [outlet]) => {
                wires.insert(out.as_str(), *outlet);
            }
            _ => return Err(load_err(format!("node {}: expected one output", node.name))),
        }
    }
    let outputs = graph
        .output
        .iter()
        .map(|o| {
            wires
                .get(o.name.as_str())
                .copied()
                .ok_or_else(|| load_err(format!("unknown output {}", o.name)))
        })
        .collect::<Result<Vec<OutletId>, ModelError>>()?;
    let names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    if names != ["probability", "contributions"] {
        return Err(load_err(format!(
            "outputs must be [probability, contributions], not {names:?}"
        )));
    }
    model.select_output_outlets(&outputs).map_err(load_err)?;
    Ok((model, width))
}

/// N of an input declared `[batch, N]` (float).
fn input_width(input: &pb::ValueInfoProto) -> Result<usize, ModelError> {
    let shape = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t.shape.as_ref(),
        _ => None,
    };
    let dims: Vec<&pb::tensor_shape_proto::Dimension> =
        shape.map(|s| s.dim.iter().collect()).unwrap_or_default();
    let n = match dims.as_slice() {
        [_, d] => match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => usize::try_from(n).ok(),
            _ => None,
        },
        _ => None,
    };
    n.filter(|n| *n > 0).ok_or_else(|| {
        load_err(format!(
            "input {} must be [batch, N] with N fixed",
            input.name
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// `model/golden.json`: feature vectors and onnxruntime's outputs for them (`make model`).
    fn golden() -> Value {
        serde_json::from_str(include_str!("../../../model/golden.json")).unwrap()
    }

    fn floats(v: &Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }

    #[test]
    fn parity_with_onnxruntime() {
        let model = RiskModel::embedded().unwrap();
        let g = golden();
        let cases = g["cases"].as_array().unwrap();
        assert!(cases.len() >= 20, "golden.json has {} cases", cases.len());
        let mut worst = 0f32;
        for (i, case) in cases.iter().enumerate() {
            let out = model.score(&floats(&case["features"])).unwrap();
            let p = case["probability"].as_f64().unwrap() as f32;
            let d = (out.probability - p).abs();
            assert!(
                d < 1e-4,
                "case {i}: tract {} vs onnxruntime {p}",
                out.probability
            );
            worst = worst.max(d);
            let want = floats(&case["contributions"]);
            assert_eq!(out.contributions.len(), want.len(), "case {i}");
            for (j, (a, b)) in out.contributions.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4,
                    "case {i} feature {j}: tract {a} vs onnxruntime {b}"
                );
                worst = worst.max((a - b).abs());
            }
        }
        eprintln!("parity: {} cases, worst |diff| {worst:e}", cases.len());
    }

    #[test]
    fn metadata_names_the_golden_features() {
        let model = RiskModel::embedded().unwrap();
        let names: Vec<String> = golden()["feature_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(model.feature_names(), names.as_slice());
        assert_eq!(model.width(), names.len());
    }

    #[test]
    fn contributions_explain_the_logit_exactly() {
        let model = RiskModel::embedded().unwrap();
        let zero = model.score(&vec![0.0; model.width()]).unwrap();
        let logit = |p: f32| (p / (1.0 - p)).ln();
        for case in golden()["cases"].as_array().unwrap() {
            let x = floats(&case["features"]);
            let out = model.score(&x).unwrap();
            // logit(x) - logit(0) = sum of contributions(x) - sum of contributions(0).
            let lhs = logit(out.probability) - logit(zero.probability);
            let rhs: f32 =
                out.contributions.iter().sum::<f32>() - zero.contributions.iter().sum::<f32>();
            if out.probability > 1e-6 && out.probability < 1.0 - 1e-6 {
                assert!(
                    (lhs - rhs).abs() < 1e-2 * (1.0 + lhs.abs()),
                    "{lhs} vs {rhs}"
                );
            }
        }
    }

    #[test]
    fn wrong_width_is_an_error_not_a_panic() {
        let model = RiskModel::embedded().unwrap();
        let n = model.width();
        for len in [0, n - 1, n + 1] {
            assert_eq!(
                model.score(&vec![0.5; len]),
                Err(ModelError::Shape {
                    expected: n,
                    got: len
                })
            );
        }
    }

    #[test]
    fn malformed_or_foreign_models_are_refused() {
        assert!(matches!(
            RiskModel::from_onnx(b"not onnx"),
            Err(ModelError::Load(_))
        ));
        // A graph with an operator the loader does not run.
        let mut proto = pb::ModelProto::decode(EMBEDDED).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        graph.node[2].op_type = "Softmax".into();
        let err = RiskModel::from_onnx(&proto.encode_to_vec()).err().unwrap();
        assert!(
            err.to_string().contains("unsupported operator Softmax"),
            "{err}"
        );
    }
}
