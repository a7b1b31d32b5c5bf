//! The risk model: `model/risk.onnx`, embedded with `include_bytes!` and run with tract's kernels.
//!
//! The ONNX file is decoded with prost (the subset of `onnx.proto` in [`pb`]), checked and shaped once
//! at load into a [`Plan`] of the operators the exported model uses (MatMul, Add, Sub, Mul, Sigmoid;
//! any other operator is a load error), and each request runs that plan on tract-linalg's kernels:
//! unicast multiply/add/subtract, sum reduction and tract's f32 sigmoid.
//!
//! Why not tract-core's graph and optimizer (`tract_onnx::onnx()`, or a hand-wired `TypedModel`):
//! Envoy's V8 compiles a module eagerly with TurboFan (proxy-wasm-cpp-host disables Liftoff) at every
//! config load, in time proportional to the code. tract-onnx made the filter 12 MB and Envoy took 10 s
//! to become ready; tract-core alone still 6.9 MB and 6 s. tract-linalg is the part of tract that
//! computes; the graph layer's value (fusing, packing, scheduling a large network) is nil for a
//! five-node graph. The kernels are tract's portable ones, which are what tract itself picks on
//! wasm32 (no SIMD128 in proxy-wasm hosts), so the filter, `warden replay` and `warden features`
//! compute bit-identical scores. Numbers: model/BENCHMARKS.md. A test checks this runtime against
//! tract-onnx's own loader and optimizer, and another against onnxruntime's outputs (`golden.json`).
//!
//! The model (model/train.py) is a logistic regression: `probability = sigmoid(x . w + b)` and
//! `contributions = (x - baseline) * w`, so the contributions explain the score exactly and additively.

use prost::Message;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use tract_linalg::element_wise::{ElementWise, ElementWiseImpl};
use tract_linalg::generic::reduce::sum::SSum4;
use tract_linalg::generic::sigmoid::generic_sigmoid_f32_4n as SigmoidKernel;
use tract_linalg::generic::unicast::{SUnicastAdd4, SUnicastMul4, SUnicastSub4};
use tract_linalg::reduce::{Reduce, ReduceImpl};
use tract_linalg::unicast::{Unicast, UnicastImpl};

/// `model/risk.onnx`, as trained and exported by `make model`.
static EMBEDDED: &[u8] = include_bytes!("../../../model/risk.onnx");

/// The embedded model's id for decision records: `risk-` and the first 12 hex digits of the
/// SHA-256 of `model/risk.onnx` (computed once per VM).
pub fn id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| id_of(EMBEDDED))
}

/// The id of the model in `bytes` (an ONNX file): `risk-` and the first 12 hex digits of its SHA-256,
/// the same for the embedded model, a `risk.model` in the config and `warden replay --model`.
pub fn id_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    format!("risk-{}", hex.get(..12).unwrap_or(&hex))
}

/// The risk model, ready to score: load it once per VM (loading optimises the graph).
pub struct RiskModel {
    plan: Plan,
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
        let plan = Plan::from_graph(graph)?;
        let width = plan.width;
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
        let (probability, contributions) = self.plan.run(features)?;
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

/// One float tensor of rank 0 to 2, row-major (the model scores a batch of one). A computed
/// value borrows its shape from the plan (inferred at load), so a step allocates only its data.
#[derive(Debug, Clone, PartialEq)]
struct Value<'s> {
    shape: Cow<'s, [usize]>,
    data: Vec<f32>,
}

/// The operators the exporter emits; anything else is refused at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    MatMul,
    Add,
    Sub,
    Mul,
    Sigmoid,
}

/// One node of the graph, its operands and result as slots.
#[derive(Debug, Clone)]
struct Step {
    op: Op,
    inputs: Vec<usize>,
    output: usize,
    /// The shape the result has (inferred at load).
    shape: Vec<usize>,
    /// For a MatMul by a constant: the constant's columns, transposed at load.
    columns: Option<Vec<Vec<f32>>>,
}

/// The ONNX graph, checked and shaped at load: each request only computes.
#[derive(Debug, Clone)]
struct Plan {
    /// The initializers, by slot; `None` for values computed per request.
    consts: Vec<Option<Value<'static>>>,
    /// The slot of the feature vector, `[1, width]`.
    input: usize,
    width: usize,
    steps: Vec<Step>,
    /// The slots of `probability` and `contributions`.
    outputs: [usize; 2],
}

impl Plan {
    fn from_graph(graph: &pb::GraphProto) -> Result<Plan, ModelError> {
        let mut slots: HashMap<&str, usize> = HashMap::new();
        let mut consts: Vec<Option<Value<'static>>> = Vec::new();
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        for init in &graph.initializer {
            let value = load_tensor(init)
                .map_err(|e| load_err(format!("initializer {}: {e}", init.name)))?;
            if slots.insert(init.name.as_str(), consts.len()).is_some() {
                return Err(load_err(format!("initializer {} defined twice", init.name)));
            }
            shapes.push(value.shape.to_vec());
            consts.push(Some(value));
        }
        let mut inputs = graph
            .input
            .iter()
            .filter(|i| !slots.contains_key(i.name.as_str()));
        let input = inputs.next().ok_or_else(|| load_err("no input"))?;
        if inputs.next().is_some() {
            return Err(load_err("more than one input"));
        }
        let width = input_width(input)?;
        let input_slot = consts.len();
        slots.insert(input.name.as_str(), input_slot);
        shapes.push(vec![1, width]);
        consts.push(None);

        let mut steps = Vec::with_capacity(graph.node.len());
        for node in &graph.node {
            let at =
                |what: String| load_err(format!("node {} ({}): {what}", node.name, node.op_type));
            let inputs = node
                .input
                .iter()
                .map(|i| {
                    slots
                        .get(i.as_str())
                        .copied()
                        .ok_or_else(|| at(format!("unknown input {i}")))
                })
                .collect::<Result<Vec<usize>, ModelError>>()?;
            let shape_of = |slot: usize| shapes.get(slot).cloned().unwrap_or_default();
            let (op, shape) = match (node.op_type.as_str(), inputs.as_slice()) {
                ("Sigmoid", [a]) => (Op::Sigmoid, shape_of(*a)),
                ("MatMul", [a, b]) => (
                    Op::MatMul,
                    matmul_shape(&shape_of(*a), &shape_of(*b)).map_err(at)?,
                ),
                (op @ ("Add" | "Sub" | "Mul"), [a, b]) => {
                    let shape = broadcast_shape(&shape_of(*a), &shape_of(*b)).map_err(at)?;
                    let op = match op {
                        "Add" => Op::Add,
                        "Sub" => Op::Sub,
                        _ => Op::Mul,
                    };
                    (op, shape)
                }
                (op, i) => {
                    return Err(load_err(format!(
                        "unsupported operator {op} with {} inputs",
                        i.len()
                    )))
                }
            };
            let columns = match (
                op,
                inputs
                    .get(1)
                    .and_then(|b| consts.get(*b))
                    .and_then(Option::as_ref),
            ) {
                (Op::MatMul, Some(b)) => Some(columns(b)),
                _ => None,
            };
            let out = match node.output.as_slice() {
                [out] => out.as_str(),
                _ => return Err(at("expected one output".into())),
            };
            let output = consts.len();
            if slots.insert(out, output).is_some() {
                return Err(at(format!("output {out} is already defined")));
            }
            shapes.push(shape.clone());
            consts.push(None);
            steps.push(Step {
                op,
                inputs,
                output,
                shape,
                columns,
            });
        }

        let names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        let outputs = match names.as_slice() {
            ["probability", "contributions"] => {
                let slot = |n: &str| {
                    slots
                        .get(n)
                        .copied()
                        .ok_or_else(|| load_err(format!("unknown output {n}")))
                };
                [slot("probability")?, slot("contributions")?]
            }
            _ => {
                return Err(load_err(format!(
                    "outputs must be [probability, contributions], not {names:?}"
                )))
            }
        };
        let [p, c] = outputs;
        if shapes.get(p).map(|s| s.iter().product::<usize>()) != Some(1) {
            return Err(load_err("probability must be one value"));
        }
        if shapes.get(c).map(|s| s.iter().product::<usize>()) != Some(width) {
            return Err(load_err(format!("contributions must be {width} values")));
        }
        Ok(Plan {
            consts,
            input: input_slot,
            width,
            steps,
            outputs,
        })
    }

    /// (probability, contributions) for one feature vector of `width` values.
    fn run(&self, features: &[f32]) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        let input_shape = [1, self.width];
        let mut values: Vec<Option<Value<'_>>> = vec![None; self.consts.len()];
        let input = Value {
            shape: Cow::Borrowed(&input_shape),
            data: features.to_vec(),
        };
        *values
            .get_mut(self.input)
            .ok_or_else(|| run_err("no input slot"))? = Some(input);
        for step in &self.steps {
            let operand = |i: usize| -> Result<&Value<'_>, ModelError> {
                let slot = *step
                    .inputs
                    .get(i)
                    .ok_or_else(|| run_err("missing operand"))?;
                values
                    .get(slot)
                    .and_then(Option::as_ref)
                    .or_else(|| self.consts.get(slot).and_then(Option::as_ref))
                    .ok_or_else(|| run_err("operand not computed"))
            };
            let data = match step.op {
                Op::Sigmoid => {
                    let mut x = operand(0)?.data.clone();
                    ElementWiseImpl::<SigmoidKernel, f32>::new()
                        .run(&mut x)
                        .map_err(run_err)?;
                    x
                }
                Op::Add | Op::Sub | Op::Mul => {
                    // The left operand becomes the result; the right one is only read.
                    let mut a = broadcast_to(operand(0)?, &step.shape)?.into_owned();
                    let b = broadcast_to(operand(1)?, &step.shape)?;
                    match step.op {
                        Op::Add => UnicastImpl::<SUnicastAdd4, f32>::new().run(&mut a, &b),
                        Op::Sub => UnicastImpl::<SUnicastSub4, f32>::new().run(&mut a, &b),
                        _ => UnicastImpl::<SUnicastMul4, f32>::new().run(&mut a, &b),
                    }
                    .map_err(run_err)?;
                    a
                }
                Op::MatMul => {
                    let a = operand(0)?;
                    let computed;
                    let columns = match &step.columns {
                        Some(c) => c,
                        None => {
                            computed = columns(operand(1)?);
                            &computed
                        }
                    };
                    matmul(a, columns)?
                }
            };
            let slot = values
                .get_mut(step.output)
                .ok_or_else(|| run_err("no output slot"))?;
            *slot = Some(Value {
                shape: Cow::Borrowed(&step.shape),
                data,
            });
        }
        // Moved out, not copied: nothing reads the values after this.
        let mut output = |slot: usize| {
            values
                .get_mut(slot)
                .and_then(Option::take)
                .map(|v| v.data)
                .ok_or_else(|| run_err("output not computed"))
        };
        let [p, c] = self.outputs;
        Ok((output(p)?, output(c)?))
    }
}

/// `[m, k] x [k, n]`; other ranks are refused (the exporter emits rank 2).
fn matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    match (a, b) {
        ([m, k], [k2, n]) if k == k2 => Ok(vec![*m, *n]),
        _ => Err(format!("MatMul of {a:?} by {b:?}")),
    }
}

/// ONNX (numpy) broadcasting, for ranks up to 2.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    if a.len() > 2 || b.len() > 2 {
        return Err(format!("rank above 2: {a:?}, {b:?}"));
    }
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        (i + s.len())
            .checked_sub(rank)
            .and_then(|j| s.get(j))
            .copied()
            .unwrap_or(1)
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// A value's data laid out in `shape` (which it broadcasts to: checked at load); borrowed when it
/// is already laid out so (the same rows and columns: `[30]` is `[1, 30]`'s data).
fn broadcast_to<'v>(v: &'v Value<'_>, shape: &[usize]) -> Result<Cow<'v, [f32]>, ModelError> {
    let pad = |s: &[usize]| match s {
        [] => (1, 1),
        [c] => (1, *c),
        [r, c, ..] => (*r, *c),
    };
    let (rows, cols) = pad(shape);
    let (vr, vc) = pad(&v.shape);
    if (vr, vc) == (rows, cols) {
        return Ok(Cow::Borrowed(&v.data));
    }
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            let at = if vr == 1 { 0 } else { i } * vc + if vc == 1 { 0 } else { j };
            out.push(
                *v.data
                    .get(at)
                    .ok_or_else(|| run_err("broadcast out of range"))?,
            );
        }
    }
    Ok(Cow::Owned(out))
}

/// The columns of a `[k, n]` matrix, each as a contiguous vector.
fn columns(b: &Value<'_>) -> Vec<Vec<f32>> {
    let n = b.shape.get(1).copied().unwrap_or(1).max(1);
    (0..n)
        .map(|j| b.data.iter().skip(j).step_by(n).copied().collect())
        .collect()
}

/// `a [m, k]` times the matrix given by its columns: each output is tract's unicast multiply of a row
/// by a column and its sum reduction.
fn matmul(a: &Value<'_>, columns: &[Vec<f32>]) -> Result<Vec<f32>, ModelError> {
    let k = a.shape.get(1).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(a.shape.first().copied().unwrap_or(1) * columns.len());
    // One buffer for every column's products (the kernel multiplies in place).
    let mut products = Vec::with_capacity(k);
    for row in a.data.chunks(k.max(1)) {
        for column in columns {
            if column.len() != row.len() {
                return Err(run_err("MatMul operands do not match"));
            }
            products.clear();
            products.extend_from_slice(row);
            UnicastImpl::<SUnicastMul4, f32>::new()
                .run(&mut products, column)
                .map_err(run_err)?;
            out.push(
                ReduceImpl::<SSum4, f32>::new()
                    .run(&products)
                    .map_err(run_err)?,
            );
        }
    }
    Ok(out)
}

/// A float initializer (`float_data`, or `raw_data` in little-endian f32), rank 0 to 2.
fn load_tensor(t: &pb::TensorProto) -> Result<Value<'static>, String> {
    if t.data_type != pb::FLOAT {
        return Err(format!("data type {} is not float", t.data_type));
    }
    let shape = t
        .dims
        .iter()
        .map(|d| usize::try_from(*d).map_err(|_| format!("bad dimension {d}")))
        .collect::<Result<Vec<usize>, String>>()?;
    if shape.len() > 2 {
        return Err(format!("rank {} (at most 2 is supported)", shape.len()));
    }
    let data: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        let chunks = t.raw_data.chunks_exact(4);
        if !chunks.remainder().is_empty() {
            return Err("raw_data is not a whole number of f32".into());
        }
        chunks
            .map(|c| <[u8; 4]>::try_from(c).map(f32::from_le_bytes))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!("{} values for shape {shape:?}", data.len()));
    }
    Ok(Value {
        shape: Cow::Owned(shape),
        data,
    })
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

/// The part of ONNX's `onnx.proto` (IR version 3 and later) this loader reads, as prost messages.
/// Field numbers are those of onnx.proto; fields not listed are skipped by the decoder.
mod pb {
    /// `TensorProto.DataType.FLOAT`.
    pub const FLOAT: i32 = 1;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntryProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(oneof = "type_proto::Value", tags = "1")]
        pub value: Option<type_proto::Value>,
    }

    pub mod type_proto {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(message, tag = "1")]
            TensorType(Tensor),
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Tensor {
            #[prost(int32, tag = "1")]
            pub elem_type: i32,
            #[prost(message, optional, tag = "2")]
            pub shape: Option<super::TensorShapeProto>,
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<tensor_shape_proto::Dimension>,
    }

    pub mod tensor_shape_proto {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Dimension {
            #[prost(oneof = "dimension::Value", tags = "1, 2")]
            pub value: Option<dimension::Value>,
        }

        pub mod dimension {
            #[derive(Clone, PartialEq, prost::Oneof)]
            pub enum Value {
                #[prost(int64, tag = "1")]
                DimValue(i64),
                #[prost(string, tag = "2")]
                DimParam(String),
            }
        }
    }
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

    /// The same scores as tract-onnx's own loader (`tract_onnx::onnx()`, every ONNX operator, its
    /// inference layer), which the filter does not link: this loader reads the model the same way.
    #[test]
    fn same_scores_as_tract_onnx_loader() {
        use tract_onnx::prelude::*;
        let reference = tract_onnx::onnx()
            .model_for_read(&mut &EMBEDDED[..])
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let model = RiskModel::embedded().unwrap();
        for case in golden()["cases"].as_array().unwrap() {
            let x = floats(&case["features"]);
            let ours = model.score(&x).unwrap();
            let input = Tensor::from_shape(&[1, x.len()], &x).unwrap();
            let out = reference.run(tvec!(input.into_tvalue())).unwrap();
            let p = out[0].to_plain_array_view::<f32>().unwrap();
            let c = out[1].to_plain_array_view::<f32>().unwrap();
            assert!((p.iter().next().unwrap() - ours.probability).abs() < 1e-6);
            for (a, b) in c.iter().zip(&ours.contributions) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
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
        let mut proto = tract_onnx::pb::ModelProto::decode(EMBEDDED).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        graph.node[2].op_type = "Softmax".into();
        let err = RiskModel::from_onnx(&proto.encode_to_vec()).err().unwrap();
        assert!(
            err.to_string().contains("unsupported operator Softmax"),
            "{err}"
        );
    }
}
