"""Built-in models with Concrete ML 1.9's names: scikit-learn estimators (fit, predict, predict_proba,
score, get_params/set_params; usable in Pipeline and GridSearchCV) that also compile for FHE.

    from veil.ml.sklearn import RandomForestClassifier
    clf = RandomForestClassifier(n_bits=6, n_estimators=20, max_depth=4).fit(X_train, y_train)
    clf.compile(X_train)
    y = clf.predict(X_test, fhe="execute")      # "disable" (quantized, clear), "simulate", "execute"

fit trains the scikit-learn / XGBoost model (the float model stays as .sklearn_model) and calibrates
the quantization on X; compile(X) exports it to ONNX (skl2onnx, or onnxmltools for XGBoost: the
ONNX-ML operators LinearClassifier, LinearRegressor, TreeEnsemble*) and compiles it with veil.
Linear models run leveled (no lookup: the accumulator is decrypted and the logistic or softmax is
applied on the client); trees run as Concrete ML runs them (a lookup per comparison and per leaf).
NeuralNetClassifier / NeuralNetRegressor train a quantization-aware MLP with Brevitas.

Where veil differs from Concrete ML: predict(fhe="disable") before compile() compiles on the training
inputs (veil's compilation takes milliseconds); compile returns the FHECircuit; the NeuralNet* models
are not skorch models (their parameters are plain: n_layers, n_w_bits, ... rather than
module__n_layers; the module__ spellings are accepted too), and their accumulators are kept in range
by veil's automatic rounding rather than by n_accum_bits pruning."""
import importlib
import os
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from .onnx import compile_onnx_model

__all__ = ["LogisticRegression", "LinearRegression", "Ridge", "DecisionTreeClassifier", "DecisionTreeRegressor",
           "RandomForestClassifier", "RandomForestRegressor", "XGBClassifier", "XGBRegressor",
           "NeuralNetClassifier", "NeuralNetRegressor"]


def _x(X):
    a = np.asarray(X, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"X: a 2-D array (samples, features) is needed, not shape {a.shape}")
    return a


class _FHEModel:
    """What every built-in adds to its estimator: compile, and predict with fhe=."""

    _classifier = False
    _default_n_bits = 8

    def _n_bits(self):
        return self._default_n_bits if self.n_bits is None else self.n_bits

    def _export(self, X, path):  # writes the fitted model as ONNX
        raise NotImplementedError

    def _fitted(self):
        if getattr(self, "_calibration", None) is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() (or from_sklearn_model) first")

    def compile(self, X, configuration=None, artifacts=None, show_mlir=False, p_error=None, global_p_error=None,
                verbose=False, inputs_encryption_status=None, **kwargs):
        """Compile on X (its bounds decide the bit-widths); returns the FHECircuit."""
        self._fitted()
        X = _x(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X: {X.shape[1]} features, the model was fitted on {self.n_features_in_}")
        if inputs_encryption_status is not None and list(inputs_encryption_status) != ["encrypted"]:
            raise ValueError("inputs_encryption_status: a built-in model has one input, and it is encrypted")
        with tempfile.TemporaryDirectory(prefix="veil-export-") as d:
            path = os.path.join(d, "model.onnx")
            self._export(X, path)
            self.quantized_module_ = compile_onnx_model(path, X, n_bits=self._n_bits(), p_error=p_error,
                                                        global_p_error=global_p_error, **kwargs)
        return self.quantized_module_.fhe_circuit

    @property
    def fhe_circuit(self):
        qm = getattr(self, "quantized_module_", None)
        if qm is None:
            raise RuntimeError(f"{type(self).__name__}: call compile(X) first")
        return qm.fhe_circuit

    def _module(self, fhe):
        self._fitted()
        qm = getattr(self, "quantized_module_", None)
        if qm is None:
            if fhe != "disable":
                raise RuntimeError(f"{type(self).__name__}: call compile(X) before predict(fhe='{fhe}')")
            self.compile(self._calibration)
        return self.quantized_module_

    def _veil_model(self):  # for FHEModelDev
        return self._module("disable").model

    def _scores(self, X, fhe):
        """The model's outputs: (labels, probabilities) for a classifier, values for a regressor."""
        return self._module(fhe).forward(_x(X), fhe=fhe)

    def _calibrate(self, X):
        X = _x(X)
        self._calibration = X
        self.n_features_in_ = X.shape[1]
        self.quantized_module_ = None


class _Classifier(ClassifierMixin):
    _classifier = True

    def predict_proba(self, X, fhe="disable"):
        out = self._scores(X, fhe)
        return np.asarray(out[1] if isinstance(out, tuple) else out, dtype=np.float64)

    def predict(self, X, fhe="disable"):
        return self.classes_[np.argmax(self.predict_proba(X, fhe=fhe), axis=1)]


class _Regressor(RegressorMixin):
    def predict(self, X, fhe="disable"):
        out = self._scores(X, fhe)
        out = np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.float64)
        return out.reshape(len(out), -1)[:, 0] if out.ndim > 1 and out.shape[-1] == 1 else out


class _Wrapped(_FHEModel, BaseEstimator):
    """A built-in over a scikit-learn or XGBoost estimator class: its parameters are that class's,
    plus n_bits."""

    _sk = ("", "")  # module, class name

    @classmethod
    def _sklearn_class(cls):
        return getattr(importlib.import_module(cls._sk[0]), cls._sk[1])

    _defaults = {}  # class -> the wrapped class's default parameters (made once)

    @classmethod
    def _sklearn_defaults(cls):
        if cls not in _Wrapped._defaults:
            _Wrapped._defaults[cls] = cls._sklearn_class()().get_params(deep=False)
        return dict(_Wrapped._defaults[cls])

    @classmethod
    def _get_param_names(cls):
        return sorted(["n_bits"] + list(cls._sklearn_defaults()))

    def __init__(self, n_bits=None, **params):
        self.n_bits = n_bits
        defaults = self._sklearn_defaults()
        for k in params:
            if k not in defaults:
                raise TypeError(f"{type(self).__name__}: unknown parameter '{k}' (not one of {self._sk[1]}'s)")
        for k, v in defaults.items():
            setattr(self, k, params.get(k, v))

    def _sklearn_params(self):
        return {k: getattr(self, k) for k in self._sklearn_defaults()}

    def fit(self, X, y, **fit_params):
        X = _x(X)
        self.sklearn_model = self._sklearn_class()(**self._sklearn_params()).fit(X, y, **fit_params)
        self._adopt()
        self._calibrate(X)
        return self

    def _adopt(self):
        if self._classifier:
            self.classes_ = np.asarray(self.sklearn_model.classes_)

    @classmethod
    def from_sklearn_model(cls, sklearn_model, X=None, n_bits=None):
        """A built-in over an already fitted model (of this class's kind), calibrated on X."""
        if not isinstance(sklearn_model, cls._sklearn_class()):
            raise TypeError(f"from_sklearn_model: a fitted {cls._sk[1]} is needed, not {type(sklearn_model).__name__}")
        if X is None:
            raise ValueError("from_sklearn_model: X (the calibration inputs) is needed")
        names = cls._sklearn_defaults()
        params = {k: v for k, v in sklearn_model.get_params(deep=False).items() if k in names}
        m = cls(n_bits=n_bits, **params)
        m.sklearn_model = sklearn_model
        m._adopt()
        m._calibrate(X)
        if m.n_features_in_ != getattr(sklearn_model, "n_features_in_", m.n_features_in_):
            raise ValueError(f"from_sklearn_model: X has {m.n_features_in_} features, the model "
                             f"{sklearn_model.n_features_in_}")
        return m

    def _export(self, X, path):
        from skl2onnx import to_onnx
        opts = {id(self.sklearn_model): {"zipmap": False}} if self._classifier else None
        onx = to_onnx(self.sklearn_model, X[:1], options=opts, target_opset={"": 17, "ai.onnx.ml": 3})
        with open(path, "wb") as f:
            f.write(onx.SerializeToString())


class _Tree(_Wrapped):
    # veil's default, which gives trees Concrete ML's {"op_inputs": 6, "op_leaves": 6}, and one bit
    # more when compile(X, raise_log2_n=14) must raise the ceiling to meet min_agreement
    _default_n_bits = 8


class _XGB(_Tree):
    def _export(self, X, path):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        onx = onnxmltools.convert_xgboost(self.sklearn_model, initial_types=[("X", FloatTensorType([None, X.shape[1]]))],
                                          target_opset=15)
        with open(path, "wb") as f:
            f.write(onx.SerializeToString())


class LogisticRegression(_Classifier, _Wrapped):
    _sk = ("sklearn.linear_model", "LogisticRegression")


class LinearRegression(_Regressor, _Wrapped):
    _sk = ("sklearn.linear_model", "LinearRegression")


class Ridge(_Regressor, _Wrapped):
    _sk = ("sklearn.linear_model", "Ridge")


class DecisionTreeClassifier(_Classifier, _Tree):
    _sk = ("sklearn.tree", "DecisionTreeClassifier")


class DecisionTreeRegressor(_Regressor, _Tree):
    _sk = ("sklearn.tree", "DecisionTreeRegressor")


class RandomForestClassifier(_Classifier, _Tree):
    _sk = ("sklearn.ensemble", "RandomForestClassifier")


class RandomForestRegressor(_Regressor, _Tree):
    _sk = ("sklearn.ensemble", "RandomForestRegressor")


class XGBClassifier(_Classifier, _XGB):
    _sk = ("xgboost", "XGBClassifier")


class XGBRegressor(_Regressor, _XGB):
    _sk = ("xgboost", "XGBRegressor")


# ---- quantization-aware MLPs (Brevitas) ----

class _NeuralNet(_FHEModel, BaseEstimator):
    """An MLP of n_layers quantized linear layers (n_w_bits weights, n_a_bits activations, the input
    quantized to n_a_bits too), hidden width n_hidden_neurons_multiplier × the number of features,
    trained with Adam for max_epochs on mini-batches of batch_size. Scale the features first (a
    StandardScaler in a Pipeline): the input quantizer's range is learnt, but not its centre."""

    _default_n_bits = None  # the model's own quantizers decide

    def __init__(self, n_layers=3, n_w_bits=3, n_a_bits=3, n_accum_bits=8, n_hidden_neurons_multiplier=4,
                 activation_function="relu", max_epochs=10, lr=0.001, batch_size=64, random_state=None,
                 verbose=0, **module_params):
        self.n_layers, self.n_w_bits, self.n_a_bits, self.n_accum_bits = n_layers, n_w_bits, n_a_bits, n_accum_bits
        self.n_hidden_neurons_multiplier = n_hidden_neurons_multiplier
        self.activation_function = activation_function
        self.max_epochs, self.lr, self.batch_size = max_epochs, lr, batch_size
        self.random_state, self.verbose = random_state, verbose
        for k, v in module_params.items():  # Concrete ML's (skorch's) spellings
            name = k[len("module__"):] if k.startswith("module__") else None
            if name not in ("n_layers", "n_w_bits", "n_a_bits", "n_accum_bits", "n_hidden_neurons_multiplier",
                            "activation_function"):
                raise TypeError(f"{type(self).__name__}: unknown parameter '{k}'")
            setattr(self, name, v)

    @property
    def n_bits(self):
        return None

    def _module_net(self, n_in, n_out):
        import brevitas.nn as qnn
        import torch.nn as nn
        act = {"relu": qnn.QuantReLU}.get(self.activation_function)
        if act is None:
            raise ValueError(f"activation_function '{self.activation_function}': veil's NeuralNet* know 'relu'")
        if self.n_layers < 1:
            raise ValueError("n_layers: at least 1")
        width = max(1, int(self.n_hidden_neurons_multiplier * n_in))
        layers = [qnn.QuantIdentity(bit_width=self.n_a_bits, return_quant_tensor=True)]
        k = n_in
        for _ in range(self.n_layers - 1):
            layers += [qnn.QuantLinear(k, width, bias=True, weight_bit_width=self.n_w_bits),
                       act(bit_width=self.n_a_bits, return_quant_tensor=True)]
            k = width
        layers.append(qnn.QuantLinear(k, n_out, bias=True, weight_bit_width=self.n_w_bits))
        return nn.Sequential(*layers)

    def _train(self, X, target, n_out, loss_fn):
        import torch
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.manual_seed(seed)
        net = self._module_net(X.shape[1], n_out)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        xt = torch.tensor(X)
        g = torch.Generator().manual_seed(seed)
        for epoch in range(self.max_epochs):
            net.train()
            perm = torch.randperm(len(xt), generator=g)
            for i in range(0, len(xt), self.batch_size):
                idx = perm[i:i + self.batch_size]
                opt.zero_grad()
                loss = loss_fn(net(xt[idx]), target[idx])
                loss.backward()
                opt.step()
            if self.verbose:
                print(f"epoch {epoch + 1}: loss {float(loss):.4f}")
        net.eval()
        self.sklearn_model = net  # the trained (Brevitas) torch module
        return net

    def _float(self, X):
        import torch
        self._fitted()
        with torch.no_grad():
            return self.sklearn_model(torch.tensor(_x(X))).detach().numpy().astype(np.float64)

    def _export(self, X, path):
        import torch
        from brevitas.export import export_qonnx
        from .torch import _quiet
        with _quiet():
            export_qonnx(self.sklearn_model, torch.tensor(X[:1]), export_path=path)

    def compile(self, X, **kwargs):
        kwargs.setdefault("qat", True)
        return super().compile(X, **kwargs)


class NeuralNetClassifier(_Classifier, _NeuralNet):
    def fit(self, X, y):
        import torch
        X = _x(X)
        self.classes_, yi = np.unique(np.asarray(y), return_inverse=True)
        self._train(X, torch.tensor(yi, dtype=torch.int64), len(self.classes_), torch.nn.CrossEntropyLoss())
        self._calibrate(X)
        return self

    def predict_proba(self, X, fhe="disable"):
        z = np.asarray(self._scores(X, fhe), dtype=np.float64)  # logits, decrypted; softmax in the clear
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def float_predict(self, X):
        """The trained torch model's classes (no quantization of the graph by veil)."""
        return self.classes_[np.argmax(self._float(X), axis=1)]


class NeuralNetRegressor(_Regressor, _NeuralNet):
    """Targets are standardized for training; predictions are scaled back in the clear."""

    def fit(self, X, y):
        import torch
        X = _x(X)
        y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        self.y_mean_, self.y_scale_ = y.mean(axis=0), y.std(axis=0) + 1e-12
        t = torch.tensor(((y - self.y_mean_) / self.y_scale_).astype(np.float32))
        self._train(X, t, y.shape[1], torch.nn.MSELoss())
        self._y_dim = y.shape[1]
        self._calibrate(X)
        return self

    def predict(self, X, fhe="disable"):
        z = np.asarray(self._scores(X, fhe), dtype=np.float64).reshape(len(X), -1)
        y = z * self.y_scale_ + self.y_mean_
        return y[:, 0] if y.shape[1] == 1 else y

    def float_predict(self, X):
        y = self._float(X) * self.y_scale_ + self.y_mean_
        return y[:, 0] if y.shape[1] == 1 else y
