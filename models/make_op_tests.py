"""One small ONNX model per supported operator, built with onnx.helper, with its inputs and the
reference outputs of onnxruntime (or of NumPy for QONNX `Quant`, which onnxruntime cannot run).

Writes tests/ml/ops/NAME.onnx, NAME.x.npy (inputs, shape (K, ...)), NAME.y.npy (reference outputs,
shape (K, ...)) and tests/ml/ops/manifest.txt, one line per model:
    NAME QAT TOLERANCE ROUNDING_BITS
TOLERANCE bounds |clear - float| / (max(y) - min(y)) after 8-bit quantization (ml_test_ops).
Run through models/make (it sets up the virtual environment).

Also writes two_io, a model with two inputs and two outputs, outside manifest.txt (the C test reads
it by name): two_io.onnx, two_io.a.npy, two_io.b.npy (inputs "a", "b", shape (K, 4)), two_io.y1.npy,
two_io.y2.npy (outputs "y1", "y2"). `python make_op_tests.py two_io` writes only that one, and
`python make_op_tests.py onnx_ml` only the ONNX-ML operators' models (LinearClassifier,
LinearRegressor, Scaler, Normalizer, ZipMap, TreeEnsembleClassifier, TreeEnsembleRegressor, and
unsupported_*.onnx: modes veil refuses)."""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "ml", "ops")
K = 64  # samples per model
rng = np.random.default_rng(11)
manifest = []


def init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def init_i64(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.int64), name)


def save(name, nodes, inits, x, out_shape, tol=0.05, qat=0, rounding=6, ref=None, out_type=TensorProto.FLOAT,
         opset=17, domains=(), ml_opset=1):
    in_shape = ["N"] + list(x.shape[1:])
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", out_type, ["N"] + list(out_shape))], inits)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, ml_opset if d == "ai.onnx.ml" else 1)
                                                   for d in domains]
    model = helper.make_model(graph, opset_imports=imports, producer_name="veil make_op_tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    x = x.astype(np.float32)
    if ref is None:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        y = sess.run(None, {"x": x})[0]
    else:
        y = ref(x)
    onnx.save(model, os.path.join(OUT, name + ".onnx"))
    np.save(os.path.join(OUT, name + ".x.npy"), x)
    np.save(os.path.join(OUT, name + ".y.npy"), np.asarray(y, dtype=np.float64))
    manifest.append(f"{name} {qat} {tol} {rounding}")


def vec(lo=-2.0, hi=2.0, n=8):
    return rng.uniform(lo, hi, size=(K, n))


def img(lo=-1.0, hi=1.0, c=2, h=6, w=6):
    return rng.uniform(lo, hi, size=(K, c, h, w))


def unary(op, x=None, tol=0.05, **attrs):
    x = vec() if x is None else x
    save(op.lower() if not attrs.get("_name") else attrs.pop("_name"),
         [helper.make_node(op, ["x"], ["y"], **{k: v for k, v in attrs.items() if not k.startswith("_")})], [], x,
         x.shape[1:], tol=tol)


def main():
    os.makedirs(OUT, exist_ok=True)
    # element-wise activations: one table lookup per element
    unary("Relu")
    unary("Sigmoid")
    unary("Tanh")
    unary("LeakyRelu", alpha=0.1)
    unary("Elu", alpha=1.0)
    unary("Selu")
    unary("Softplus")
    unary("HardSigmoid", alpha=0.2, beta=0.5)
    unary("HardSwish")
    unary("Erf")
    unary("Abs")
    unary("Exp", x=vec(-2, 1))
    # steep near the low end of the input range: 8-bit input steps show more
    unary("Log", x=vec(0.1, 4), tol=0.08)
    unary("Sqrt", x=vec(0.0, 4), tol=0.08)
    unary("Neg")
    unary("Identity")
    save("clip", [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [init("lo", -0.5), init("hi", 1.0)], vec(), (8,))
    save("dropout", [helper.make_node("Dropout", ["x"], ["y"])], [], vec(), (8,))
    save("pow", [helper.make_node("Pow", ["x", "e"], ["y"])], [init("e", 2.0)], vec(), (8,))
    # element-wise binary operators with a constant
    for op in ["Add", "Sub", "Mul", "Div"]:
        c = rng.uniform(0.5, 1.5, size=(8,))
        save(op.lower(), [helper.make_node(op, ["x", "c"], ["y"])], [init("c", c)], vec(), (8,))
    # GELU as torch exports it: x * 0.5 * (1 + erf(x / sqrt(2))), a chain on one input
    save("gelu", [helper.make_node("Div", ["x", "s2"], ["a"]), helper.make_node("Erf", ["a"], ["b"]),
                  helper.make_node("Add", ["b", "one"], ["c"]), helper.make_node("Mul", ["x", "c"], ["d"]),
                  helper.make_node("Mul", ["d", "half"], ["y"])],
         [init("s2", np.sqrt(2.0)), init("one", 1.0), init("half", 0.5)], vec(), (8,))
    # Sigmoid inside the circuit (a trailing one runs on the client)
    save("sigmoid_inner", [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["s", "c"], ["y"])],
         [init("c", rng.uniform(0.5, 1.5, size=(8,)))], vec(), (8,))
    # SiLU: x * sigmoid(x), a product of two chains on the same input
    save("silu", [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])], [], vec(),
         (8,))
    # linear layers
    w = rng.normal(0, 0.5, size=(4, 8))
    b = rng.normal(0, 0.1, size=(4,))
    save("gemm", [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.8, beta=0.5)],
         [init("w", w), init("b", b)], vec(), (4,))
    save("matmul", [helper.make_node("MatMul", ["x", "wt"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],
         [init("wt", w.T), init("b", b)], vec(), (4,))
    # two encrypted values added: a residual block y = Gemm2(relu(Gemm1(x))) + Gemm3(x)
    w1, w2, w3 = (rng.normal(0, 0.5, size=s) for s in [(8, 8), (4, 8), (4, 8)])
    save("add_encrypted", [
        helper.make_node("Gemm", ["x", "w1"], ["a"], transB=1), helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Gemm", ["r", "w2"], ["p"], transB=1), helper.make_node("Gemm", ["x", "w3"], ["q"], transB=1),
        helper.make_node("Add", ["p", "q"], ["y"])], [init("w1", w1), init("w2", w2), init("w3", w3)], vec(), (4,),
        tol=0.08)
    # convolution family
    wc = rng.normal(0, 0.4, size=(3, 2, 3, 3))
    bc = rng.normal(0, 0.1, size=(3,))
    save("conv", [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])],
         [init("w", wc), init("b", bc)], img(), (3, 3, 3))
    wg = rng.normal(0, 0.4, size=(2, 1, 3, 3))
    save("conv_group", [helper.make_node("Conv", ["x", "w"], ["y"], group=2)], [init("w", wg)], img(), (2, 4, 4))
    save("averagepool", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], [],
         img(), (2, 3, 3))
    save("globalaveragepool", [helper.make_node("GlobalAveragePool", ["x"], ["y"])], [], img(), (2, 1, 1))
    save("maxpool", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], [], img(),
         (2, 3, 3))
    g, be, mu, var = (rng.uniform(0.5, 1.5, 3), rng.normal(0, 0.2, 3), rng.normal(0, 0.2, 3), rng.uniform(0.5, 2, 3))
    save("batchnormalization", [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["y"], epsilon=1e-5)],
        [init("w", wc), init("b", bc), init("g", g), init("be", be), init("mu", mu), init("var", var)], img(), (3, 3, 3))
    save("pad", [helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant")],
         [init_i64("pads", [0, 0, 1, 1, 0, 0, 1, 1])], img(), (2, 8, 8))
    # shapes
    save("flatten", [helper.make_node("Flatten", ["x"], ["y"], axis=1)], [], img(), (72,))
    save("reshape", [helper.make_node("Reshape", ["x", "s"], ["y"])], [init_i64("s", [-1, 12, 6])], img(), (12, 6))
    xs = rng.uniform(-1, 1, size=(K, 1, 8))
    save("squeeze", [helper.make_node("Squeeze", ["x", "ax"], ["y"])], [init_i64("ax", [1])], xs, (8,))
    save("unsqueeze", [helper.make_node("Unsqueeze", ["x", "ax"], ["y"])], [init_i64("ax", [1])], vec(), (1, 8))
    save("transpose", [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])], [], img(), (2, 6, 6))
    save("concat", [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Concat", ["x", "r"], ["y"], axis=1)],
         [], img(), (4, 6, 6))
    # a constant made by a node, and torch's flatten through Shape/Gather/Cast arithmetic
    cw = helper.make_tensor("cw", TensorProto.FLOAT, [4, 8], rng.normal(0, 0.5, 32).astype(np.float32).tolist())
    save("constant", [helper.make_node("Constant", [], ["w"], value=cw),
                      helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], [], vec(), (4,))
    save("shape_gather_cast", [
        helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["nf", "ax"], ["n1"]), helper.make_node("Concat", ["n1", "m1"], ["ns"], axis=0),
        helper.make_node("Reshape", ["x", "ns"], ["y"])],
        [init_i64("i0", 0), init_i64("ax", [0]), init_i64("m1", [-1])], img(), (72,))
    # client-side post-processing after a linear layer
    for op in ["Softmax", "LogSoftmax"]:
        save(op.lower(), [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1),
                          helper.make_node(op, ["g"], ["y"], axis=-1)], [init("w", w)], vec(), (4,), tol=0.08)
    save("argmax", [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1),
                    helper.make_node("ArgMax", ["g"], ["y"], axis=1, keepdims=1)], [init("w", w)], vec(), (1,),
         out_type=TensorProto.INT64, tol=1.0)
    # ONNX QDQ: QuantizeLinear/DequantizeLinear on the input and the weights
    wq = np.clip(np.round(w / 0.02), -127, 127).astype(np.int8)
    save("quantizelinear", [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"]),
        helper.make_node("Gemm", ["xd", "wd"], ["y"], transB=1)],
        [init("xs", 4.0 / 255), numpy_helper.from_array(np.array(0, dtype=np.int8), "xz"),
         numpy_helper.from_array(wq, "wq"), init("ws", 0.02)], vec(), (4,), qat=1)
    # QONNX Quant (Brevitas export): 4-bit input and weights; reference in NumPy
    def quant(v, s, z, bits, signed, narrow):
        lo = -(2 ** (bits - 1)) + narrow if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
        return s * (np.clip(np.round(v / s + z), lo, hi) - z)  # np.round: half to even, as ROUND
    ws = 0.15
    xq_s = 0.25
    def ref(x):
        return quant(x, xq_s, 0.0, 4, 1, 0) @ quant(w, ws, 0.0, 4, 1, 1).T
    qd = "qonnx.custom_op.general"
    save("quant", [
        helper.make_node("Quant", ["x", "xs", "z", "b4"], ["xq"], domain=qd, signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["w", "ws", "z", "b4"], ["wq"], domain=qd, signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("Gemm", ["xq", "wq"], ["y"], transB=1)],
        [init("xs", xq_s), init("ws", ws), init("z", 0.0), init("b4", 4.0), init("w", w)], vec(), (4,), qat=1,
        ref=ref, domains=[qd])
    # not a test model: an operator veil does not support, for the error message
    bad = helper.make_graph([helper.make_node("Cos", ["x"], ["y"], name="my_cos")], "unsupported",
                            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])])
    onnx.save(helper.make_model(bad, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(OUT, "unsupported.onnx"))
    onnx_ml()
    write_manifest()
    print(f"wrote {len(manifest)} operator models to {os.path.normpath(OUT)}")
    two_io()


def two_io():
    """Two inputs, two outputs: y1 = Relu(a + b), y2 = MatMul(Concat(a, b, axis=1), w) + bias.
    Its own generator, so the models above keep their random stream."""
    os.makedirs(OUT, exist_ok=True)
    r = np.random.default_rng(23)
    a = r.uniform(-2.0, 2.0, size=(K, 4)).astype(np.float32)
    b = r.uniform(-2.0, 2.0, size=(K, 4)).astype(np.float32)
    w = r.normal(0, 0.5, size=(8, 3))
    bias = r.normal(0, 0.1, size=(3,))
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y1"]),
             helper.make_node("Concat", ["a", "b"], ["c"], axis=1), helper.make_node("MatMul", ["c", "w"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["y2"])]
    graph = helper.make_graph(
        nodes, "two_io",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y1", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, ["N", 3])],
        [init("w", w), init("bias", bias)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="veil make_op_tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y1, y2 = sess.run(["y1", "y2"], {"a": a, "b": b})
    onnx.save(model, os.path.join(OUT, "two_io.onnx"))
    np.save(os.path.join(OUT, "two_io.a.npy"), a)
    np.save(os.path.join(OUT, "two_io.b.npy"), b)
    # float64, like the other models' NAME.y.npy
    np.save(os.path.join(OUT, "two_io.y1.npy"), np.asarray(y1, dtype=np.float64))
    np.save(os.path.join(OUT, "two_io.y2.npy"), np.asarray(y2, dtype=np.float64))
    print(f"wrote two_io to {os.path.normpath(OUT)}")


ML = "ai.onnx.ml"


def onnx_ml():
    """The ONNX-ML operators of scikit-learn exports (own random stream, manifest lines appended),
    and the modes veil refuses by name (unsupported_*.onnx, read by ml_test_ops)."""
    r = np.random.default_rng(12)

    def x8():
        return r.uniform(-2.0, 2.0, size=(K, 8))

    def lc(name, labels, post, out="Z", **extra):
        E = len(labels)
        coef = r.normal(0, 0.6, size=(E, 8))
        if post == "LOGISTIC" and E == 2:  # skl2onnx's binary layout: rows -w and w
            coef[0] = -coef[1]
        attrs = dict(coefficients=coef.ravel().tolist(), intercepts=r.normal(0, 0.3, size=E).tolist(),
                     classlabels_ints=list(labels), post_transform=post, **extra)
        node = helper.make_node("LinearClassifier", ["x"], ["Y", "Z"] if out == "Z" else ["y", "Z"], domain=ML,
                                **attrs)
        if out == "Z":
            node.output[1] = "y"
            save(name, [node], [], x8(), (E,), domains=(ML,))
        else:  # the label: int64; one flipped label near a tie is a whole step (the float check is exact)
            save(name, [node], [], x8(), (), tol=1.0, out_type=TensorProto.INT64, domains=(ML,))

    lc("linearclassifier_softmax", [0, 1, 2], "SOFTMAX", multi_class=1)
    lc("linearclassifier_logistic", [0, 1], "LOGISTIC")
    lc("linearclassifier_none", [0, 1, 2, 3], "NONE")
    lc("linearclassifier_softmax_zero", [0, 1, 2], "SOFTMAX_ZERO")
    lc("linearclassifier_label", [3, 7, 11], "NONE", out="Y")
    save("linearregressor", [helper.make_node("LinearRegressor", ["x"], ["y"], domain=ML, targets=2,
                                              coefficients=r.normal(0, 0.5, size=16).tolist(),
                                              intercepts=[0.25, -0.5])], [], x8(), (2,), domains=(ML,))
    # a Scaler on the model input runs on the client: per feature, and one value for every feature
    save("scaler", [helper.make_node("Scaler", ["x"], ["s"], domain=ML, offset=r.normal(0, 1, 8).tolist(),
                                     scale=r.uniform(0.5, 2, 8).tolist()),
                    helper.make_node("Gemm", ["s", "w"], ["y"], transB=1)],
         [init("w", r.normal(0, 0.5, size=(3, 8)))], x8(), (3,), domains=(ML,))
    save("scaler_scalar", [helper.make_node("Scaler", ["x"], ["y"], domain=ML, offset=[0.5], scale=[1.5])], [], x8(),
         (8,), domains=(ML,))
    # the scores stay in [1, 5]: no normalization of near-zero rows, which amplifies any rounding
    for norm in ("MAX", "L1", "L2"):
        save("normalizer_" + norm.lower(), [helper.make_node("Gemm", ["x", "w", "c"], ["g"], transB=1),
                                            helper.make_node("Normalizer", ["g"], ["y"], domain=ML, norm=norm)],
             [init("w", r.normal(0, 0.1, size=(4, 8))), init("c", [3.0, 3.0, 3.0, 3.0])], x8(), (4,), domains=(ML,))
    # ZipMap: veil's output is the probabilities tensor (onnxruntime's a list of maps of it)
    coef = r.normal(0, 0.6, size=(3, 8))
    zattrs = dict(coefficients=coef.ravel().tolist(), intercepts=[0.1, 0.0, -0.1], classlabels_ints=[0, 1, 2],
                  post_transform="SOFTMAX")
    plain = helper.make_model(helper.make_graph(
        [helper.make_node("LinearClassifier", ["x"], ["Y", "y"], domain=ML, **zattrs)], "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 1)])
    plain.ir_version = 8
    psess = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    save("zipmap", [helper.make_node("LinearClassifier", ["x"], ["Y", "Z"], domain=ML, **zattrs),
                    helper.make_node("ZipMap", ["Z"], ["y"], domain=ML, classlabels_int64s=[0, 1, 2])], [], x8(), (3,),
         ref=lambda x: psess.run(None, {"x": x})[0], domains=(ML,))

    # tree ensembles, hand-made: two trees of depth 2 on 8 features, every comparison mode
    def trees(name, cls, modes=("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_LEQ", "BRANCH_LT"),
              post="NONE", ntargets=2, tensors=False, **extra):
        # per tree: root 0 → (1, 2); 1 → leaves 3, 4; 2 → leaves 5, 6
        tre, nid, feat, val, md, tru, fal, miss = [], [], [], [], [], [], [], []
        for t in range(2):
            for i in range(7):
                tre.append(t), nid.append(i)
                if i < 3:
                    feat.append(int(r.integers(0, 8))), val.append(float(r.uniform(-1, 1)))
                    md.append(modes[t * 3 + i]), tru.append(2 * i + 1), fal.append(2 * i + 2)
                else:
                    feat.append(0), val.append(0.0), md.append("LEAF"), tru.append(0), fal.append(0)
                miss.append(int(i == 0))  # tracked toward true: only decides NaN inputs
        wt, wn, wi, ww = [], [], [], []
        for t in range(2):
            for i in range(3, 7):
                for k in range(ntargets):
                    wt.append(t), wn.append(i), wi.append(k), ww.append(float(r.uniform(-1, 1) if not cls else r.uniform(0, 1)))
        attrs = dict(nodes_treeids=tre, nodes_nodeids=nid, nodes_featureids=feat, nodes_modes=list(md),
                     nodes_truenodeids=tru, nodes_falsenodeids=fal, nodes_missing_value_tracks_true=miss,
                     post_transform=post, **extra)
        if tensors:
            attrs["nodes_values_as_tensor"] = helper.make_tensor("v", TensorProto.FLOAT, [len(val)], val)
        else:
            attrs["nodes_values"] = val
        pre = "class" if cls else "target"
        attrs.update({pre + "_treeids": wt, pre + "_nodeids": wn, pre + "_ids": wi, pre + "_weights": ww})
        if cls:
            attrs.setdefault("classlabels_int64s", list(range(max(ntargets, 2))))
            node = helper.make_node("TreeEnsembleClassifier", ["x"], ["label", "y"], domain=ML, **attrs)
            save(name, [node], [], x8(), (max(ntargets, 2),), domains=(ML,), ml_opset=3)
        else:
            node = helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain=ML, n_targets=ntargets, **attrs)
            save(name, [node], [], x8(), (ntargets,), domains=(ML,), ml_opset=3)

    trees("treeclassifier_modes", True, ntargets=3, classlabels_int64s=[0, 1, 2])
    trees("treeclassifier_softmax", True, ntargets=3, post="SOFTMAX", base_values=[0.1, 0.2, -0.1],
          classlabels_int64s=[0, 1, 2])
    trees("treeclassifier_binary_logistic", True, ntargets=1, post="LOGISTIC", base_values=[0.3])
    trees("treeclassifier_binary_none", True, ntargets=1)
    trees("treeregressor_sum", False, ntargets=2, base_values=[1.0, -1.0])
    trees("treeregressor_average", False, ntargets=1, aggregate_function="AVERAGE", tensors=True)

    def refused(name, node):
        g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 1)]),
                  os.path.join(OUT, name + ".onnx"))

    w16 = r.normal(0, 0.5, size=16).tolist()
    refused("unsupported_probit", helper.make_node("LinearClassifier", ["x"], ["l", "y"], domain=ML, name="lc_probit",
                                                   coefficients=w16, classlabels_ints=[0, 1], post_transform="PROBIT"))
    refused("unsupported_strings", helper.make_node("LinearClassifier", ["x"], ["l", "y"], domain=ML, name="lc_str",
                                                    coefficients=w16, classlabels_strings=["no", "yes"]))
    refused("unsupported_regressor_transform", helper.make_node("LinearRegressor", ["x"], ["y"], domain=ML,
                                                                name="lr_logistic", coefficients=w16, targets=2,
                                                                post_transform="LOGISTIC"))
    def tree_refused(name, nname, **over):
        attrs = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[1, 0, 0],
                     nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_truenodeids=[1, 0, 0],
                     nodes_falsenodeids=[2, 0, 0], nodes_values=[0.5, 0.0, 0.0], target_treeids=[0, 0],
                     target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[1.0, 2.0], n_targets=1)
        attrs.update(over)
        refused(name, helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain=ML, name=nname, **attrs))

    tree_refused("unsupported_tree_eq", "tree_eq", nodes_modes=["BRANCH_EQ", "LEAF", "LEAF"])
    tree_refused("unsupported_tree_neq", "tree_neq", nodes_modes=["BRANCH_NEQ", "LEAF", "LEAF"])
    tree_refused("unsupported_tree_max", "tree_max", aggregate_function="MAX")
    refused("unsupported_normalizer", helper.make_node("Normalizer", ["x"], ["y"], domain=ML, name="nrm", norm="L3"))


def write_manifest(keep_from=None):
    """manifest.txt: the lines of this run, after those of an earlier run that keep_from keeps."""
    lines = []
    path = os.path.join(OUT, "manifest.txt")
    if keep_from is not None and os.path.exists(path):
        with open(path) as f:
            lines = [l.rstrip("\n") for l in f if not l.startswith("#") and keep_from(l.split()[0])]
    with open(path, "w") as f:
        f.write("# NAME QAT TOLERANCE ROUNDING_BITS (written by models/make_op_tests.py)\n")
        f.write("\n".join(lines + manifest) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["two_io"]:
        two_io()
    elif sys.argv[1:] == ["onnx_ml"]:
        onnx_ml()
        names = {l.split()[0] for l in manifest}
        write_manifest(lambda n: n not in names)
    elif sys.argv[1:]:
        sys.exit("usage: make_op_tests.py [two_io | onnx_ml]")
    else:
        main()
